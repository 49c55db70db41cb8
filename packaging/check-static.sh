#!/usr/bin/env bash
# Builds the release binary the packages ship (packaging/build-static.sh)
# and proves it is static: no dynamic loader, no shared libraries, so one
# file runs on any x86_64 Linux the packages target. Prints its size.
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(./packaging/build-static.sh | tail -n 1)"
kind="$(file -b "$binary")"
case "$kind" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "check-static: $binary is not static: $kind" >&2; exit 1 ;;
esac
# ldd of a static binary prints "not a dynamic executable" or "statically
# linked" and names no library.
if ldd "$binary" 2>&1 | grep -q '=>'; then
    echo "check-static: $binary loads shared libraries:" >&2
    ldd "$binary" >&2
    exit 1
fi
"$binary" version
echo "check-static: $binary is static ($kind), $(du -h "$binary" | cut -f1)"
