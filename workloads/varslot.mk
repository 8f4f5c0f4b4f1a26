# ---- run-varslot (shared-memory slot pools; issue 13) --------------------------
# Compares the three growth modes of src/varslot (remap, extent_files, fixed)
# in one invocation on the same seed: VS_REPEATS rounds, each round running
# every mode once (interleaved, so machine noise spreads over all modes),
# one result JSON per run in results/varslot-growth/<UTC time>/<mode>-r<k>.json,
# each checked against ci/varslot_bounds.json, then a table of medians.
#   make run-varslot [VS_REPEATS=3] [VS_MODES="remap extent_files fixed"] [VS_ARGS="--set ops=10000000 --set kill_guest=true"]
#   memfd segments: VS_MODES="remap fixed" VS_ARGS="--set segment=memfd" (extent_files needs named files)
VS_REPEATS ?= 3
VS_MODES ?= remap extent_files fixed
VS_ARGS ?=
.PHONY: run-varslot
run-varslot: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/varslot-growth/$$ts; mkdir -p $$out; \
	for r in $$(seq 1 $(VS_REPEATS)); do for m in $(VS_MODES); do \
	  $(BIN) run workloads/varslot-growth.json --set growth=$$m $(VS_ARGS) --out $$out/$$m-r$$r.json --quiet || exit 1; \
	  $(BIN) check $$out/$$m-r$$r.json --bounds ci/varslot_bounds.json --quiet >/dev/null || { \
	    $(BIN) check $$out/$$m-r$$r.json --bounds ci/varslot_bounds.json --quiet; exit 1; }; \
	done; done; \
	ln -sfn $$ts results/varslot-growth/latest && \
	$(PYTHON) results/varslot_table.py $$out
# ---- end run-varslot ------------------------------------------------------------
