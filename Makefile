# znslab — top-level build.
#
#   make                 build build/znslab, the static libraries, tests and benches
#   make test            unit tests (Catch2) + the RSS-bound check; last line "N passed, N failed, N skipped"
#   make run-churn       the churn experiment on temporal-slab and the four peers, 3 interleaved repeats:
#                        JSON + plots + table of medians with 95 % intervals
#   make plot DIR=...    redraw the plots of one result folder (default: results/churn/latest)
#   make deps            install the Debian packages the project needs (as root), or print the command
#   make ci              what .ci/run does after installing dependencies
#   make clean
#
# Variables: SANITIZE=asan|tsan (separate build tree build/asan, build/tsan), V=1 (full commands),
# CXXFLAGS/LDFLAGS are yours to add to; what the project needs is appended with `override`.

CXX      ?= g++
SANITIZE ?=
V        ?= 0
PYTHON   ?= /usr/bin/python3

ifeq ($(SANITIZE),)
  BUILD := build
else ifeq ($(SANITIZE),asan)
  BUILD := build/asan
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SANITIZE),tsan)
  BUILD := build/tsan
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
  $(error SANITIZE must be empty, asan or tsan (got '$(SANITIZE)'))
endif

ifeq ($(V),0)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
else
  Q :=
  say = @true
endif

CXXFLAGS ?= -O2 -g
override CXXFLAGS += -std=c++20 -Wall -Wextra -Werror -pthread -I. -MMD -MP $(SANFLAGS)
ifneq ($(SANITIZE),)
  override CXXFLAGS += -DZNSLAB_SANITIZE=\"$(SANITIZE)\"
endif
override LDFLAGS += -pthread $(SANFLAGS)
# Every system library the static libraries build/lib*.a need (`make print-link`).
SYSLIBS := -luring -lzbd -lnvme -lisal -lzstd -ldl

# --- sources per library (one folder per layer; see DESIGN.md) -------------
# src/common and src/pages form libznspages.a; every other folder under src/
# (slab, segment, overflow, varslot, trace, ...) is its own libzns<folder>.a;
# zns/ and zns/io/ form libznszns.a. A new module is a new folder: no edit here.
PAGES_SRC   := $(wildcard src/common/*.cpp src/pages/*.cpp)
ZNS_SRC     := $(wildcard zns/*.cpp zns/io/*.cpp)
SRC_MODULES := $(filter-out common pages,$(notdir $(patsubst %/,%,$(wildcard src/*/))))
# Workload generators live in workloads/ beside their JSON files; they are
# linked with the harness (static registrars).
HARNESS_SRC := $(wildcard harness/*.cpp harness/*/*.cpp workloads/*.cpp)
TEST_SRC    := $(wildcard tests/*.cpp)
BENCH_SRC   := $(wildcard bench/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

LIB_PAGES   := $(BUILD)/libznspages.a
LIB_ZNS     := $(BUILD)/libznszns.a
MODULE_LIBS := $(foreach m,$(SRC_MODULES),$(BUILD)/libzns$(m).a)
# Kept for the module .mk files that name them.
LIB_SLAB    := $(BUILD)/libznsslab.a
LIB_SEGMENT := $(BUILD)/libznssegment.a
# Linked as one group, so the order between modules does not matter.
LIBS := $(MODULE_LIBS) $(LIB_ZNS) $(LIB_PAGES)
LINK_LIBS = -Wl,--start-group $(LIBS) -Wl,--end-group $(SYSLIBS)

BIN       := $(BUILD)/znslab
TEST_BIN  := $(BUILD)/tests/znslab_tests
BENCH_BIN := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all test run-churn plot ci deps clean check-deps print-link report
.DEFAULT_GOAL := all

all: $(BIN) $(TEST_BIN) $(BENCH_BIN)

$(BUILD)/obj/%.o: %.cpp
	$(call say,CXX,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(CXXFLAGS) -c $< -o $@

define archive
$(1): $(call obj,$(2))
	$$(call say,AR,$$@)
	@mkdir -p $$(dir $$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(eval $(call archive,$(LIB_PAGES),$(PAGES_SRC)))
$(eval $(call archive,$(LIB_ZNS),$(ZNS_SRC)))
$(foreach m,$(SRC_MODULES),$(eval $(call archive,$(BUILD)/libzns$(m).a,$(wildcard src/$(m)/*.cpp))))

# Provenance embedded in the binary (harness/provenance.h): rewritten on every
# make, but replaced (and provenance.o rebuilt) only when HEAD, the dirty
# state, the compiler or the flags change.
BUILD_INFO := $(BUILD)/gen/build_info.h
.PHONY: FORCE
$(BUILD_INFO): FORCE
	@mkdir -p $(dir $@)
	@rev=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown); \
	if [ "$$rev" != unknown ] && [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev=$$rev-dirty; fi; \
	{ echo "#define ZNSLAB_GIT_REV \"$$rev\""; \
	  echo "#define ZNSLAB_COMPILER \"$$($(CXX) --version | head -n1 | tr -d '\"\\\\')\""; \
	  echo "#define ZNSLAB_CXXFLAGS \"$(subst \,,$(subst ",,$(CXXFLAGS)))\""; } > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/harness/provenance.o: $(BUILD_INFO)
$(BUILD)/obj/harness/provenance.o: override CXXFLAGS += -I$(BUILD)/gen

# The harness objects are linked directly (not archived) so that workloads
# registering themselves through static registrars are never dropped.
$(BIN): $(call obj,$(HARNESS_SRC)) $(LIBS)
	$(call say,LINK,$@)
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call obj,$(HARNESS_SRC)) $(LINK_LIBS)

# Tests link the harness objects too (schema and workload parsing are tested),
# except its main().
HARNESS_LIB_OBJ := $(filter-out $(BUILD)/obj/harness/main.o,$(call obj,$(HARNESS_SRC)))
$(TEST_BIN): $(call obj,$(TEST_SRC)) $(HARNESS_LIB_OBJ) $(LIBS)
	$(call say,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call obj,$(TEST_SRC)) $(HARNESS_LIB_OBJ) $(LINK_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBS)
	$(call say,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(LDFLAGS) -o $@ $< $(LINK_LIBS)

# --- dependencies -------------------------------------------------------------
# Debian packages the project needs: build (liburing-dev libnvme-dev libzbd-dev catch2
# nlohmann-json3-dev), the I/O baseline (fio), peers (jemalloc, mimalloc, tcmalloc),
# plots (python3-matplotlib), the guest (qemu-system-x86 busybox-static nvme-cli).
DEB_PKGS := g++ make liburing-dev libnvme-dev libzbd-dev fio catch2 nlohmann-json3-dev \
            libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4 python3 python3-matplotlib \
            qemu-system-x86 busybox-static nvme-cli util-linux \
            libcli11-dev libisal-dev libzstd-dev libboost-dev parallel clang libclang-rt-14-dev
deps:
	$(Q)missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "deps: missing Debian packages: $$missing"; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "deps: not root; run:  sudo apt-get update && sudo apt-get install -y $$missing"; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing

# --- test ---------------------------------------------------------------------
test: deps
	$(Q)$(MAKE) --no-print-directory all SANITIZE=$(SANITIZE) V=$(V)
	$(Q)$(PYTHON) tests/run_tests.py --build $(BUILD) --sanitize "$(SANITIZE)"

# --- experiments --------------------------------------------------------------
CHURN_ALLOCATORS ?= temporal-slab,glibc,jemalloc,mimalloc,tcmalloc
CHURN_REPEATS ?= 3
run-churn: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/churn/$$ts; \
	$(BIN) compare workloads/churn.json --allocators $(CHURN_ALLOCATORS) --repeats $(CHURN_REPEATS) --out $$out $(ARGS); rc=$$?; \
	ln -sfn $$ts results/churn/latest && \
	$(PYTHON) results/plot.py $$out && echo "results: $$out (results/churn/latest)"; exit $$rc

# docs/results.md: the table of every results/<experiment>/latest folder,
# generated from result JSON by `znslab report` (never pinned by hand).
report: $(BIN)
	$(Q){ echo "# Results"; echo; \
	  echo "Generated by \`make report\` on $$(date -u +%Y-%m-%dT%H:%MZ) by $$($(BIN) --version) from"; \
	  echo "every results/<experiment>/latest folder. Cells: median [95 % interval of the median];"; \
	  echo "see docs/harness.md for the metrics."; \
	  for d in results/*/latest; do [ -d "$$d" ] || continue; \
	    echo; echo "## $$(basename $$(dirname $$d)): $$(readlink $$d)"; echo; \
	    $(BIN) report "$$d" --format md || echo "(no result in $$d)"; done; } > docs/results.md
	@echo "wrote docs/results.md"

DIR ?= results/churn/latest
plot:
	$(Q)$(PYTHON) results/plot.py $(DIR)

ci: test

# The link line of a program using the static libraries (for your own tools).
print-link:
	@echo '$(CXX) $(LDFLAGS) -o PROGRAM PROGRAM.o $(LINK_LIBS)'

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Targets that live beside their code (each file owned by its module).
# Each module may add targets in its own .mk file (src/<module>/*.mk,
# workloads/*.mk, zns/vm/vm.mk, ...).
-include $(sort $(wildcard zns/vm/*.mk workloads/*.mk src/*/*.mk harness/*.mk bench/*.mk ci/*.mk tests/*.mk))
