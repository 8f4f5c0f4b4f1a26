# ---- check-file-backed (pager engineer; issue 10) ------------------------------
# The file-backed layers' CI check: the [pager], [subpage] and [overflow]
# tests (crash trials included), then short pager-churn and overflow-spill
# runs checked against ci/file_backed_bounds.json (metadata share, stale
# reads, fragmentation; no speed bounds).
#   make check-file-backed [SANITIZE=asan]
FB_OUT ?= $(BUILD)/file-backed-check
.PHONY: check-file-backed
check-file-backed: $(BIN) $(TEST_BIN)
	$(Q)$(TEST_BIN) "[pager],[subpage],[overflow]"
	$(Q)mkdir -p $(FB_OUT)
	$(Q)$(BIN) run workloads/pager-churn.json --quiet --out $(FB_OUT)/pager-churn.json \
	  --set pages=65536 --set sub_pages=16384 --set churn_ops=100000 --set timing_batches=10000 --set commit_every=20000
	$(Q)$(BIN) check $(FB_OUT)/pager-churn.json --bounds ci/file_backed_bounds.json
	$(Q)$(BIN) run workloads/overflow-spill.json --quiet --out $(FB_OUT)/overflow-spill.json \
	  --set initial_bytes=8388608 --set fill_bytes=12582912
	$(Q)$(BIN) check $(FB_OUT)/overflow-spill.json --bounds ci/file_backed_bounds.json
