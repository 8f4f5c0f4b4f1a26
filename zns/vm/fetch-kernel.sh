#!/bin/sh
# Fetch Debian's kernel package with apt (never installed on the host) and
# extract the ELF vmlinux and the modules the guest needs.
#
# usage: zns/vm/fetch-kernel.sh VMDIR
# Output: VMDIR/kernel/vmlinux, VMDIR/kernel/root (dpkg -x of the package),
#         VMDIR/kernel/version (e.g. 6.1.0-56-amd64). Cached: a second run
#         with the same package version does nothing.
set -eu
VMDIR=${1:?usage: fetch-kernel.sh VMDIR}
mkdir -p "$VMDIR"; VMDIR=$(cd "$VMDIR" && pwd)
KDIR=$VMDIR/kernel
mkdir -p "$KDIR"
die() { echo "vm: fetch-kernel: $*" >&2; exit 1; }

# linux-image-amd64 is a metapackage; its Depends names the real package.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "vm: apt knows no linux-image-amd64; running apt-get update" >&2
    apt-get update -qq >&2 || true
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
fi
[ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no kernel package (run apt-get update as root)"
kver=${pkg#linux-image-}
if [ -s "$KDIR/vmlinux" ] && [ "$(cat "$KDIR/version" 2>/dev/null)" = "$kver" ]; then
  echo "vm: kernel $kver (cached in $KDIR)"
  exit 0
fi
echo "vm: fetching $pkg with apt-get download"
rm -rf "$KDIR/dl" "$KDIR/root" "$KDIR/vmlinux"
mkdir -p "$KDIR/dl"
( cd "$KDIR/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$KDIR/dl/apt.err" ) || {
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2 || true
    ( cd "$KDIR/dl" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>"$KDIR/dl/apt.err" ) ||
      { cat "$KDIR/dl/apt.err" >&2; die "apt-get download $pkg failed"; }
  else
    cat "$KDIR/dl/apt.err" >&2; die "apt-get download $pkg failed"
  fi
}
deb=$(ls "$KDIR"/dl/*.deb | head -n 1)
dpkg -x "$deb" "$KDIR/root" || die "dpkg -x $deb failed"
rm -f "$deb"
bz=$(ls "$KDIR"/root/boot/vmlinuz-* | head -n 1)
[ -f "$bz" ] || die "no /boot/vmlinuz-* in $pkg"
/usr/bin/python3 "$(dirname "$0")/extract_vmlinux.py" "$bz" "$KDIR/vmlinux" || die "cannot extract vmlinux from $bz"
echo "$kver" > "$KDIR/version"
echo "vm: kernel $kver ready in $KDIR"
