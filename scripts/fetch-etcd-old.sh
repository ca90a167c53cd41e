#!/usr/bin/env bash
# Make the previous etcd minor (Debian's etcd-server/etcd-client 3.4) available in
# .cache/etcd-3.4 for the rolling-upgrade test, without installing it system-wide
# (a system install would start an etcd service). Optional: without it the upgrade
# tests are skipped with a reason. Exit code 0 when the binary is there afterwards.
set -euo pipefail
dest="${1:-.cache/etcd-3.4}"
if [ -x "$dest/usr/bin/etcd" ]; then exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$(dirname "$0")/apt-download.sh" "$work" etcd-server etcd-client \
    || { echo "fetch-etcd-old: the etcd 3.4 upgrade tests will be skipped" >&2; exit 1; }
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
"$dest/usr/bin/etcd" --version | head -1
