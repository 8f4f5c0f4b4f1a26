# make vm-test: the real-kernel zoned-device tests in a QEMU guest (zns/vm/run.sh).
# Included by the top-level Makefile. Needs the Debian packages qemu-system-x86,
# busybox-static, fio, nvme-cli, util-linux (blkzone) and python3 (make deps).
.PHONY: vm-test vm-clean
vm-test: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(TEST_BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)zns/vm/run.sh $(BUILD)

vm-clean:
	rm -rf $(BUILD)/vm
