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
# tests that took at most ~16 s each on the emulator through ublk under TCG
# (146 s for the subset on ublkb1, 114 s on nullb1, 97 s on nvme0n2) in the
# full-suite run of docs/vm.md, plus 25 (9 s: 16 jobs against the
# active-zone limit). 30 and 32 (random writes for 30 s each against the
# active-zone limit, pass on all three devices with the suite's -w) are left
# to make vm-test-full: on three devices they took 190 s of a 605 s
# make vm-test. The skipped-everywhere tests are left out.
VM_FIO_ZBD_CI ?= 1,2,7,8,11,17,18,19,21,22,24,25,33,34,35,36,37,38,39,40,41,44,45,47

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
