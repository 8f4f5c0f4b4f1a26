# libFuzzer targets (tests/fuzz/): `make fuzz` builds them with clang++
# -fsanitize=fuzzer,address in their own tree (build/fuzz: the project's
# sources they need are compiled again with clang, the g++ archives are not
# linked) and runs each for FUZZ_SECONDS (default 60); `make fuzz-build`
# only builds them. tests/run_tests.py runs each for FUZZ_SHORT_RUNS inputs
# as part of `make test`. Seeds: tests/fuzz/corpus/<target>/; new inputs
# go to build/fuzz/corpus/<target>/, crashes to build/fuzz/crash-*.
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -I. -pthread -fno-omit-frame-pointer -fsanitize=address,undefined \
                 -fno-sanitize-recover=undefined -Wall -Wextra -Werror
FUZZ_NAMES   := uri workload slab_handles
FUZZ_BINS    := $(foreach n,$(FUZZ_NAMES),$(FUZZ_BUILD)/fuzz_$(n))

FUZZ_DEPS_uri          := zns/uri.cpp src/common/status.cpp
FUZZ_DEPS_workload     := harness/config.cpp harness/registry.cpp zns/uri.cpp src/common/status.cpp
FUZZ_DEPS_slab_handles := $(wildcard src/slab/*.cpp) src/pages/pages.cpp src/common/status.cpp src/common/crc32c.cpp

# src/slab links zns/ only to open a spill device by URI; the fuzz build
# leaves that out (zns/ does not build with clang 14).
$(FUZZ_BUILD)/obj/src/slab/%.o: FUZZ_CXXFLAGS += -DZNSLAB_SLAB_WITHOUT_ZNS

fuzz_obj = $(patsubst %.cpp,$(FUZZ_BUILD)/obj/%.o,$(1))

$(FUZZ_BUILD)/obj/%.o: %.cpp
	$(call say,FUZZCXX,$<)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define fuzz_target
$(FUZZ_BUILD)/fuzz_$(1): $(call fuzz_obj,tests/fuzz/fuzz_$(1).cpp $(FUZZ_DEPS_$(1)))
	$$(call say,FUZZLD,$$@)
	$(Q)$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer -o $$@ $$^ -lisal
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_target,$(n))))

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)bad=""; for n in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
	  echo "fuzz_$$n: $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n \
	    > $(FUZZ_BUILD)/fuzz_$$n.log 2>&1; rc=$$?; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|SUMMARY|==[0-9]+==ERROR)' $(FUZZ_BUILD)/fuzz_$$n.log; \
	  if [ $$rc -ne 0 ]; then echo "fuzz_$$n: FAILED (exit $$rc), see $(FUZZ_BUILD)/fuzz_$$n.log"; bad="$$bad $$n"; fi; \
	done; \
	if [ -n "$$bad" ]; then echo "fuzz: findings in:$$bad (inputs: $(FUZZ_BUILD)/crash-*)"; exit 1; fi
