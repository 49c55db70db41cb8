#!/usr/bin/env bash
# Builds the statically linked release binary (glibc, crt-static; SQLite is
# compiled in) into target/x86_64-unknown-linux-gnu/release/inboxgrove.
#
# --target is what keeps crt-static off build scripts and proc-macros,
# which cannot link statically.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS="-C target-feature=+crt-static ${RUSTFLAGS:-}" \
    cargo build --release --locked --target "$target"
echo "target/$target/release/inboxgrove"
