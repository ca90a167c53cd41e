#!/usr/bin/env bash
# Make promtool (Prometheus' rule checker and rule unit tester) available in .cache/prometheus for
# the monitoring tests, from Debian's prometheus package, unpacked without installing it (an
# install would start a Prometheus service). Required: without it the monitoring tests fail and
# name this script's make target. Exit code 0 when promtool is there afterwards.
set -euo pipefail
dest="${1:-.cache/prometheus}"
promtool="$dest/usr/bin/promtool"
if [ -x "$promtool" ]; then exit 0; fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "fetch-promtool: no apt-get/dpkg-deb here; install promtool by hand and set PROMTOOL" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download prometheus >/dev/null 2>&1); }
if ! download; then
    # Stale package lists: refresh them if allowed to (root), then try once more.
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
    download || { echo "fetch-promtool: apt-get download prometheus failed; install promtool by hand and set PROMTOOL" >&2; exit 1; }
fi
mkdir -p "$dest"
# promtool alone: the package's server, web assets and service files are not needed.
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$dest" ./usr/bin/promtool
"$promtool" --version 2>&1 | head -1
