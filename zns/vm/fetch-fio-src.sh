#!/bin/sh
# Fetch fio's source (Debian's source package of the fio installed on the
# host, which is the fio the guest runs) with the private apt configuration
# (zns/vm/private-apt.sh), and unpack its t/zbd test suite.
#
# usage: zns/vm/fetch-fio-src.sh VMDIR
# Output: VMDIR/fio-src/t/zbd/{test-zbd-support,functions}, VMDIR/fio-src/version.
# Cached per version.
set -eu
VMDIR=${1:?usage: fetch-fio-src.sh VMDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$VMDIR"; VMDIR=$(cd "$VMDIR" && pwd)
die() { echo "vm: fetch-fio-src: $*" >&2; exit 1; }
ver=$(dpkg-query -W -f '${Version}' fio 2>/dev/null) || die "fio is not installed (Debian package fio)"
D=$VMDIR/fio-src
if [ -f "$D/t/zbd/test-zbd-support" ] && [ "$(cat "$D/version" 2>/dev/null)" = "$ver" ]; then
  echo "vm: fio $ver source (cached in $D)"; exit 0
fi
[ -f "$VMDIR/apt/lists/lock" ] || [ -n "$(ls "$VMDIR/apt/lists/" 2>/dev/null | grep -i sources)" ] ||
  "$HERE/private-apt.sh" "$VMDIR/apt" update || die "private apt update failed"
rm -rf "$D" "$VMDIR/fio-dl"; mkdir -p "$VMDIR/fio-dl"
( cd "$VMDIR/fio-dl" && "$HERE/private-apt.sh" "$VMDIR/apt" source "fio=$ver" ) >/dev/null 2>"$VMDIR/fio-dl/apt.err" || {
  "$HERE/private-apt.sh" "$VMDIR/apt" update >/dev/null 2>&1 || true
  ( cd "$VMDIR/fio-dl" && "$HERE/private-apt.sh" "$VMDIR/apt" source "fio=$ver" ) >/dev/null 2>"$VMDIR/fio-dl/apt.err" || {
    cat "$VMDIR/fio-dl/apt.err" >&2; die "apt-get source --download-only fio=$ver failed (not in Debian's archive any more?)"; }
}
orig=$(ls "$VMDIR"/fio-dl/fio_*.orig.tar.* | head -n 1)
[ -f "$orig" ] || die "no fio_*.orig.tar.* downloaded"
mkdir -p "$D"
tar -xf "$orig" -C "$D" --strip-components=1 --wildcards '*/t/zbd/*' || die "cannot unpack t/zbd from $orig"
echo "$ver" > "$D/version"
rm -rf "$VMDIR/fio-dl"
echo "vm: fio $ver t/zbd suite in $D/t/zbd"
