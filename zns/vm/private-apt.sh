#!/bin/sh
# apt-get / apt-cache with a private configuration in APTDIR: Debian trixie
# and trixie-backports (binary and source) and bookworm (source, for the
# host's fio), with their own state, cache and lists. The host's apt sources,
# state and cache are never read or written.
#
# usage: zns/vm/private-apt.sh APTDIR update
#        zns/vm/private-apt.sh APTDIR download PKG...      (into the cwd)
#        zns/vm/private-apt.sh APTDIR source PKG=VERSION   (download only, into the cwd)
#        zns/vm/private-apt.sh APTDIR search REGEX | policy PKG
set -eu
A=${1:?usage: private-apt.sh APTDIR update|download|source|search|policy ...}
cmd=${2:?}
shift 2
ARGS="$*"  # package names (no spaces in Debian package names)
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/sources.list.d" "$A/preferences.d" "$A/conf.d"
A=$(cd "$A" && pwd)
KR=/usr/share/keyrings/debian-archive-keyring.gpg
MIRROR=${VM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cat > "$A/sources.list" <<SRC
deb [signed-by=$KR] $MIRROR trixie-backports main
deb-src [signed-by=$KR] $MIRROR trixie-backports main
deb [signed-by=$KR] $MIRROR trixie main
deb-src [signed-by=$KR] $MIRROR bookworm main
SRC
: > "$A/status.empty"
set -- -o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts="$A/sources.list.d" \
  -o Dir::Etc::preferences="$A/preferences" -o Dir::Etc::preferencesparts="$A/preferences.d" \
  -o Dir::Etc::parts="$A/conf.d" -o Dir::State="$A" -o Dir::State::lists="$A/lists" \
  -o Dir::State::status="$A/status.empty" -o Dir::Cache="$A/cache" -o Debug::NoLocking=1 \
  -o APT::Sandbox::User=root -o Acquire::Languages=none
case $cmd in
  update) exec apt-get -qq "$@" update ;;
  download) exec apt-get -qq "$@" download $ARGS ;;
  source) exec apt-get -qq "$@" source --download-only $ARGS ;;
  search) exec apt-cache "$@" search $ARGS ;;
  policy) exec apt-cache "$@" policy $ARGS ;;
  *) echo "private-apt.sh: unknown command $cmd" >&2; exit 2 ;;
esac
