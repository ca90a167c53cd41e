#!/usr/bin/env bash
# Make the previous etcd minor (Debian's etcd-server/etcd-client 3.4) available in
# .cache/etcd-3.4 for the rolling-upgrade test, without installing it system-wide
# (a system install would start an etcd service). Optional: without it the upgrade
# tests are skipped with a reason. Exit code 0 when the binary is there afterwards.
set -euo pipefail
dest="${1:-.cache/etcd-3.4}"
if [ -x "$dest/usr/bin/etcd" ]; then exit 0; fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "fetch-etcd-old: no apt-get/dpkg-deb here; the etcd 3.4 upgrade tests will be skipped" >&2
    exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
download() { (cd "$work" && apt-get download etcd-server etcd-client >/dev/null 2>&1); }
if ! download; then
    # Stale package lists: refresh them if allowed to (root), then try once more.
    if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; fi
    download || { echo "fetch-etcd-old: apt-get download etcd-server failed; upgrade tests will be skipped" >&2; exit 1; }
fi
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
"$dest/usr/bin/etcd" --version | head -1
