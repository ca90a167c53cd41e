#!/usr/bin/env bash
# Make promtool (Prometheus' rule checker and rule unit tester) available in .cache/prometheus for
# the monitoring tests, from Debian's prometheus package, unpacked without installing it (an
# install would start a Prometheus service). Required: without it the monitoring tests fail and
# name this script's make target. Exit code 0 when promtool is there afterwards.
set -euo pipefail
dest="${1:-.cache/prometheus}"
promtool="$dest/usr/bin/promtool"
if [ -x "$promtool" ]; then exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$(dirname "$0")/apt-download.sh" "$work" prometheus \
    || { echo "fetch-promtool: install promtool by hand and set PROMTOOL" >&2; exit 1; }
mkdir -p "$dest"
# promtool alone: the package's server, web assets and service files are not needed.
dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$dest" ./usr/bin/promtool
"$promtool" --version 2>&1 | head -1
