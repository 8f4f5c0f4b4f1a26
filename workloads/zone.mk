# ---- run-zone-churn (segment engineer; issue 5) ------------------------------
# Compares the zoned segment store's placement policies on the same device
# geometry and seed in one invocation: one result JSON per placement in
# results/zone-churn/<UTC time>/, a plot (WA over time, WA/resets/GC copies
# per policy) and a summary table.
#   make run-zone-churn [ZC_DEVICE=emu:/path?zones=..] [ZC_GC=greedy|cost-benefit] [ZC_ARGS="--set write_factor=5"]
ZC_PLACEMENTS ?= single epoch
ZC_GC ?= greedy
ZC_DEVICE ?=
ZC_ARGS ?=
.PHONY: run-zone-churn
run-zone-churn: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/zone-churn/$$ts; mkdir -p $$out; \
	for p in $(ZC_PLACEMENTS); do \
	  $(BIN) run workloads/zone-churn.json --set placement=$$p --set gc=$(ZC_GC) \
	    $(if $(ZC_DEVICE),--device '$(ZC_DEVICE)') $(ZC_ARGS) --out $$out/$$p.json || exit 1; \
	done; \
	ln -sfn $$ts results/zone-churn/latest && \
	$(PYTHON) results/plot_zone_churn.py $$out && echo "results: $$out"
# ---- end run-zone-churn --------------------------------------------------------
