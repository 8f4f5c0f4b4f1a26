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

# ---- run-zone-write (zoned storage tier; issue 3) ------------------------------
# Sequential zone writes through the emulator's io_uring path vs fio's io_uring
# throughput on the same filesystem (128 KiB, QD 8 by default; medians of
# `repeats` alternating runs). Result JSON in results/zone-write/<UTC time>.json
# and a one-line summary.
#   make run-zone-write [ZW_DEVICE=emu:/path?zones=64&zone_size=64M&prealloc=1] [ZW_ARGS="--set mode=append"]
ZW_DEVICE ?=
ZW_ARGS ?=
.PHONY: run-zone-write
run-zone-write: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/zone-write/$$ts.json; \
	$(BIN) run workloads/zone-write.json $(if $(ZW_DEVICE),--device '$(ZW_DEVICE)') $(ZW_ARGS) --out $$out && \
	$(PYTHON) -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['summary']; \
	print('zone-write: %.0f MiB/s, %.0f IOPS, %.2f us CPU/IO, fio %s MiB/s, ratio %s' % (s['throughput_mib_s'], s['iops'], s['cpu_us_per_io'], \
	('%.0f' % d['fio']['throughput_mib_s']) if 'throughput_mib_s' in d.get('fio', {}) else 'n/a', \
	('%.2f' % s['fio_ratio']) if 'fio_ratio' in s else 'n/a'))" $$out && echo "results: $$out"
# ---- end run-zone-write --------------------------------------------------------
