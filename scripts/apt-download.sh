#!/usr/bin/env bash
# apt-download.sh DIR PACKAGE...: the .deb files of Debian's PACKAGEs into DIR, nothing installed (so
# no service starts). Stale package lists are refreshed once, if allowed to (root). Exit 1 with one
# line on stderr when apt-get or dpkg-deb is missing or the download fails.
set -euo pipefail
dir="$1"
shift
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "apt-download: no apt-get/dpkg-deb here" >&2
    exit 1
fi
download() { (cd "$dir" && apt-get download "$@" >/dev/null 2>&1); }
if ! download "$@"; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
    download "$@" || { echo "apt-download: apt-get download $* failed" >&2; exit 1; }
fi
