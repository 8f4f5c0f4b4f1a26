# Sweeps (harness/sweep.h, docs/sweeps.md).
#
#   make slurm-test      a real single-node Slurm (munged, slurmctld, slurmd from a
#                        generated config in a temp dir), a small sweep through
#                        --engine slurm, results and summary checked, daemons stopped
#                        by pid; installs slurm-wlm and munge when missing (as root)
#   make sweep SWEEP=workloads/sweeps/X.json [ENGINE=local|parallel|slurm] [OUT=DIR]
#                        run a sweep, then plot it (make plot DIR=...)
#
# The GNU parallel engine is exercised by the [sweep] Catch2 tests (make test).

# Debian packages of the Slurm engine's test (installed by ci/slurm_test.sh when
# missing; not in DEB_PKGS because only make slurm-test needs a local Slurm).
SLURM_DEB_PKGS := slurm-wlm munge

.PHONY: slurm-test sweep
slurm-test:
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)SLURM_DEB_PKGS="$(SLURM_DEB_PKGS)" PYTHON=$(PYTHON) sh ci/slurm_test.sh $(BIN)

SWEEP  ?= workloads/sweeps/smoke.json
ENGINE ?= local
sweep:
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)out=$${OUT:-results/sweeps/$$(basename $(SWEEP) .json)}; \
	$(BIN) sweep $(SWEEP) --engine $(ENGINE) --out $$out $(ARGS); rc=$$?; \
	$(PYTHON) results/plot.py $$out; exit $$rc
