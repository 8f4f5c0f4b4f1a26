# make vm-test: the real-kernel zoned-device tests in QEMU guests (zns/vm/run.sh):
# Debian 12's 6.1 kernel, then Linux 7.x from trixie-backports (private apt
# configuration: zns/vm/private-apt.sh) with the emulator served as
# /dev/ublkb0 (znslab ublk) and fio's zoned test suite (t/zbd/test-zbd-support).
# Included by the top-level Makefile. Needs the Debian packages qemu-system-x86,
# busybox-static, fio, nvme-cli, util-linux (blkzone) and python3 (make deps),
# plus xz-utils (the 7.x modules are .ko.xz), binutils (strings: module
# dependencies) and debian-archive-keyring (the private apt sources).
#
#   make vm-test                   both kernels (VM_KERNEL=6.1|7|all, default all),
#                                  fio's suite: the CI subset VM_FIO_ZBD_CI
#   make vm-test VM_KERNEL=6.1     Debian 12's kernel only (no ublk there)
#   make vm-test-full              both kernels, fio's whole suite in the 7.x guest
DEB_PKGS += xz-utils binutils debian-archive-keyring

VM_KERNEL ?= all
# The CI subset of fio's t/zbd/test-zbd-support (test numbers of fio 3.33):
# the tests that take under ~25 s each on all three devices under TCG and
# exercise what a zoned device must get right (see docs/vm.md for the table
# of the whole suite and its times).
VM_FIO_ZBD_CI ?= 1,2,3,4,5,6,7,8,9,10,11,12,13,16,17,18,19,20,21,22,23,24,26,27,28,30,31,33,34,35,36,37,38,40,41,42,43,44,46,47,48,50,52,53,54,55,56,57,58

.PHONY: vm-test vm-test-full vm-clean
vm-test: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(TEST_BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)VM_KERNEL=$(VM_KERNEL) VM_FIO_ZBD_CI=$(VM_FIO_ZBD_CI) zns/vm/run.sh $(BUILD)

# Every test of fio's zoned suite on ublkb0, nullb0 and nvme0n1 (slow under
# TCG: see docs/vm.md for its time).
vm-test-full: deps
	$(Q)$(MAKE) --no-print-directory $(BIN) $(TEST_BIN) SANITIZE=$(SANITIZE) V=$(V)
	$(Q)VM_KERNEL=$(VM_KERNEL) VM_FIO_ZBD=all VM_TIMEOUT7=$${VM_TIMEOUT7:-9000} zns/vm/run.sh $(BUILD)

vm-clean:
	rm -rf $(BUILD)/vm
