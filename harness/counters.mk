# Counter tables of docs/*.md, generated from the counter declarations
# (harness/counters.h). `make docs-counters` rewrites the marked sections;
# the [counters] tests fail when one is out of date.
.PHONY: docs-counters
docs-counters: $(BIN)
	$(Q)$(BIN) counters --update-docs
