#!/bin/sh
# libzbd's `zbd` command for the 7.x guest, built from Debian's libzbd source
# package: `apt-get source --download-only libzbd=<host libzbd2 version>` in
# the private apt configuration (zns/vm/private-apt.sh), then
# tools/cli/zbd.c + zbd_dump.c compiled against the host's libzbd (libzbd-dev,
# the library the guest gets with it). No autotools: the command is those
# two files.
#
# usage: zns/vm/fetch-libzbd-src.sh VMDIR
# Output: VMDIR/zbd/zbd, VMDIR/zbd/version. Cached per version.
set -eu
VMDIR=${1:?usage: fetch-libzbd-src.sh VMDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$VMDIR"; VMDIR=$(cd "$VMDIR" && pwd)
die() { echo "vm: fetch-libzbd-src: $*" >&2; exit 1; }
ver=$(dpkg-query -W -f '${Version}' libzbd2 2>/dev/null) || die "libzbd2 is not installed (Debian package libzbd-dev)"
D=$VMDIR/zbd
if [ -x "$D/zbd" ] && [ "$(cat "$D/version" 2>/dev/null)" = "$ver" ]; then
  echo "vm: libzbd $ver zbd command (cached in $D)"; exit 0
fi
DL=$VMDIR/libzbd-dl
rm -rf "$D" "$DL"; mkdir -p "$DL"
# The source lists come with the private configuration's first update.
[ -n "$(ls "$VMDIR/apt/lists/" 2>/dev/null | grep -i sources)" ] ||
  "$HERE/private-apt.sh" "$VMDIR/apt" update || die "private apt update failed"
fetch() { ( cd "$DL" && "$HERE/private-apt.sh" "$VMDIR/apt" source "libzbd=$ver" ) >/dev/null 2>"$DL/apt.err"; }
# Only the upstream tarball is needed: when the archive misses the small
# Debian patch tarball (apt then fails) the build goes on with the orig.
fetch || { "$HERE/private-apt.sh" "$VMDIR/apt" update >/dev/null 2>&1 || true; fetch; } ||
  ls "$DL"/libzbd_*.orig.tar.* >/dev/null 2>&1 || {
    cat "$DL/apt.err" >&2; die "apt-get source --download-only libzbd=$ver failed (not in Debian's archive any more?)"; }
orig=$(ls "$DL"/libzbd_*.orig.tar.* | head -n 1)
mkdir -p "$DL/src"
tar -xf "$orig" -C "$DL/src" --strip-components=1 || die "cannot unpack $orig"
mkdir -p "$D"
cc=${CC:-cc}
$cc -O2 -Wall -I"$DL/src/include" -o "$D/zbd" "$DL/src/tools/cli/zbd.c" "$DL/src/tools/cli/zbd_dump.c" -lzbd ||
  die "cannot build zbd from $orig (needs libzbd-dev)"
echo "$ver" > "$D/version"
rm -rf "$DL"
echo "vm: libzbd $ver: zbd command built in $D/zbd"
