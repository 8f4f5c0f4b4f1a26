# ---- src/trace: LD_PRELOAD libraries and the trace corpus (issue 12) ----------
# build/libznstrace.so       the allocation recorder (ZNSTRACE_OUT=path)
# build/libznsslab-malloc.so malloc on the temporal slab (ZNSSLAB_* variables)
# Both are built from -fPIC objects of their own in $(BUILD)/pic/ (the static
# archives are not position independent). See docs/trace.md.
PRELOAD_SLAB := $(if $(wildcard src/trace/preload/slab_malloc.cpp),$(BUILD)/libznsslab-malloc.so)
PIC_OBJ = $(patsubst %.cpp,$(BUILD)/pic/%.o,$(1))
TRACE_FMT_SRC := src/trace/trace_format.cpp
RECORDER_SRC  := src/trace/preload/recorder.cpp
SLAB_MALLOC_SRC := src/trace/preload/slab_malloc.cpp $(wildcard src/slab/*.cpp) $(PAGES_SRC)

# Preloaded libraries cannot carry a sanitizer (its runtime must come first),
# so SANITIZE builds them, and the test helper, without -fsanitize.
PIC_CXXFLAGS = $(filter-out -fsanitize%,$(CXXFLAGS)) -fPIC -fvisibility=hidden
PIC_LDFLAGS = $(filter-out -fsanitize%,$(LDFLAGS))
$(BUILD)/pic/%.o: %.cpp
	$(call say,CXX-PIC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(PIC_CXXFLAGS) -c $< -o $@

# The [trace] tests run this helper under the recorder.
$(BUILD)/tests/trace_prog: $(BUILD)/pic/tests/helpers/trace_prog.o
	$(call say,LINK,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CXX) $(PIC_LDFLAGS) -o $@ $<
$(TEST_BIN): | $(BUILD)/tests/trace_prog $(BUILD)/libznstrace.so $(PRELOAD_SLAB)

$(BUILD)/libznstrace.so: $(call PIC_OBJ,$(TRACE_FMT_SRC) $(RECORDER_SRC))
	$(call say,LINK,$@)
	$(Q)$(CXX) $(PIC_LDFLAGS) -shared -o $@ $^ -Wl,--exclude-libs,ALL -static-libstdc++ -lzstd -ldl -lgcc_s

$(BUILD)/libznsslab-malloc.so: $(call PIC_OBJ,$(SLAB_MALLOC_SRC))
	$(call say,LINK,$@)
	$(Q)$(CXX) $(PIC_LDFLAGS) -shared -o $@ $^ -Wl,--exclude-libs,ALL -static-libstdc++ -lisal -ldl

all: $(BUILD)/libznstrace.so $(PRELOAD_SLAB) $(BUILD)/tests/trace_prog
-include $(shell find $(BUILD)/pic -name '*.d' 2>/dev/null)
# ---- end src/trace ---------------------------------------------------------------

# ---- the corpus: make traces / make run-traces -----------------------------------
# traces: one trace per program (redis-server + redis-benchmark, sqlite3, python3,
# cc1plus) in results/traces/NAME.ztr (git-ignored) and results/traces/overhead.json.
# run-traces: replays on the five allocators (temporal-slab x 4 epoch policies) and
# unmodified runs under each, TRACE_REPEATS times; results/run-traces/<UTC time>/.
DEB_PKGS += redis-server redis-tools sqlite3 bc
TRACE_REPEATS ?= 3
.PHONY: traces run-traces
traces: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(BUILD)/libznstrace.so SANITIZE=$(SANITIZE) V=$(V)
	$(Q)src/trace/corpus/record.sh $(BUILD) results/traces
run-traces: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(BUILD)/libznsslab-malloc.so SANITIZE=$(SANITIZE) V=$(V)
	$(Q)ts=$$(date -u +%Y%m%dT%H%M%SZ); out=results/run-traces/$$ts; \
	src/trace/corpus/run.sh $(BUILD) results/traces $$out $(TRACE_REPEATS) && \
	ln -sfn $$ts results/run-traces/latest && echo "results: $$out"
# ---- end corpus ---------------------------------------------------------------------
