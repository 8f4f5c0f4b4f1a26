# ---- run-tiered (the slab over zones: DRAM budget and spill; issue 11) ---------
# Compares, in one invocation on the same seed and the same emulated device
# geometry, the temporal slab with no spill (RSS grows past the budget),
# epoch-granular spill and page-granular spill (LRU 4 KiB slabs) to zones,
# and epoch spill to an overflow region file (src/overflow; no GC) on
# workloads/tiered-churn.json: TIERED_REPEATS rounds, each round running
# every configuration once (interleaved, so machine drift spreads over all of
# them), one result per run in results/tiered-churn/<UTC time>/<label>.r<k>.json,
# each checked by `znslab check`; then the table of medians with 95 %
# intervals (`znslab report`) and the plots (results/plot.py: RSS over time,
# write amplification). docs/tiered.md.
#   make run-tiered [TIERED_REPEATS=3] [TIERED_CONFIGS="no-spill epoch-spill page-spill overflow-spill"]
#                   [TIERED_ARGS="--set live_multiple=8 --set mispredicted_fraction=0"]
#   make tiered-smoke    one short epoch-spill run to zns and one to overflow, checked (seconds; for CI)
TIERED_REPEATS ?= 3
TIERED_CONFIGS ?= no-spill epoch-spill page-spill overflow-spill
TIERED_ARGS ?=
TIERED_METRICS := rss_over_budget_pct,peak_rss_bytes,spilled_bytes,faultbacks,faultback_p99_ns,write_amplification,zone_resets,gc_copied_bytes,ops_per_sec
tiered_set_no-spill := --set slab_spill=none
tiered_set_epoch-spill := --set slab_spill=zns --set slab_spill_unit=epoch
tiered_set_page-spill := --set slab_spill=zns --set slab_spill_unit=page
tiered_set_overflow-spill := --set slab_spill=overflow --set slab_spill_unit=epoch

.PHONY: run-tiered tiered-smoke
run-tiered: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/tiered-churn/$$ts; mkdir -p $$out; \
	for r in $$(seq 1 $(TIERED_REPEATS)); do \
	  $(foreach c,$(TIERED_CONFIGS),echo "run-tiered: round $$r: $(c)"; \
	  $(BIN) run workloads/tiered-churn.json $(tiered_set_$(c)) $(TIERED_ARGS) --label $(c) \
	    --out $$out/$(c).r$$r.json --quiet || exit 1; \
	  $(BIN) check $$out/$(c).r$$r.json --quiet || exit 1;) \
	done; \
	ln -sfn $$ts results/tiered-churn/latest; \
	$(BIN) report $$out --metrics $(TIERED_METRICS); \
	$(PYTHON) results/plot.py $$out; echo "results: $$out (results/tiered-churn/latest)"

# A short epoch-spill run (budget 2 MiB, 12 epochs, 2 x live data, 5 % mispredicted):
# every object's bytes checked, the result checked against the schema.
# The same run again with slab_spill=overflow (the overflow region target).
tiered-smoke: $(BIN)
	$(Q)d=$$(mktemp -d); rc=0; \
	for t in zns overflow; do \
	  $(BIN) run workloads/tiered-churn.json --set slab_dram_budget_bytes=2M --set epochs=12 \
	    --set live_multiple=2 --set mispredicted_fraction=0.05 --set device_dir="\"$$d\"" \
	    --set slab_spill=$$t --out $$d/r-$$t.json --quiet && $(BIN) check $$d/r-$$t.json --quiet || rc=1; \
	done; rm -rf $$d; exit $$rc
# ---- end run-tiered ------------------------------------------------------------
