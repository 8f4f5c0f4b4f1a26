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
