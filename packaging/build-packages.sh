#!/usr/bin/env bash
# Builds the .deb (cargo-deb) and the .rpm (cargo-generate-rpm) from the
# static binary of packaging/build-static.sh, with the files and scripts
# listed in Cargo.toml ([package.metadata.deb], [...generate-rpm]). Prints
# the two package paths, the .deb then the .rpm, as its last two lines.
#
#   packaging/build-packages.sh [--deb-version VERSION] [--deb-only]
#
# --deb-version overrides the .deb's version (default: Cargo.toml's version,
# revision 1), e.g. to build an upgrade of the same tree; --deb-only skips
# the .rpm (and prints only the .deb).
#
# The two tools are installed, pinned, under target/pkgtools/ when missing:
# a clean clone needs nothing more, and nothing outside target/ changes.
set -euo pipefail
cd "$(dirname "$0")/.."

deb_version=() rpm=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --deb-version) deb_version=(--deb-version "$2"); shift 2 ;;
        --deb-only) rpm=""; shift ;;
        *) echo "build-packages: unknown argument $1" >&2; exit 2 ;;
    esac
done

# Versions that build with the toolchain in use (Rust 1.95) from crates.io.
CARGO_DEB=3.8.0
CARGO_GENERATE_RPM=0.21.1
tools="$PWD/target/pkgtools"
installed() { [ "$("$tools/bin/$1" --version 2>/dev/null | awk '{print $NF}')" = "$2" ]; }
if ! installed cargo-deb "$CARGO_DEB" || ! installed cargo-generate-rpm "$CARGO_GENERATE_RPM"; then
    echo "build-packages: installing cargo-deb $CARGO_DEB and cargo-generate-rpm $CARGO_GENERATE_RPM into $tools" >&2
    # One target dir: the dependencies the two share are built once.
    cargo install --locked --quiet --root "$tools" --target-dir "$tools/build" \
        "cargo-deb@$CARGO_DEB" "cargo-generate-rpm@$CARGO_GENERATE_RPM" >&2
fi
export PATH="$tools/bin:$PATH"

# The binary, built once; the packaging tools only copy it (its path is
# target/<triple>/release/inboxgrove, which both map `target/release/` to
# when given the same --target).
binary="$(./packaging/build-static.sh | tail -n 1)"
triple="$(basename "$(dirname "$(dirname "$binary")")")"

# --no-strip: the symbol table stays, so perf can name functions (README).
deb="$(cargo deb --no-build --no-strip --target "$triple" "${deb_version[@]}" | tail -n 1)"
echo "$deb"
if [ -n "$rpm" ]; then
    # --auto-req no: nothing to find in a static binary.
    pkgid="$(cargo pkgid)"
    rpm="$PWD/target/$triple/generate-rpm/inboxgrove-${pkgid##*@}-1.${triple%%-*}.rpm"
    cargo generate-rpm --target "$triple" --auto-req no --output "$rpm" >&2
    echo "$rpm"
fi
