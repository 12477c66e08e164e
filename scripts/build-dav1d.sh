#!/usr/bin/env bash
# Builds GStreamer's `dav1ddec` element: gst-plugin-dav1d, the crate gst-plugins-rs publishes on
# crates.io (exact version below, its dependencies as in scripts/dav1d.Cargo.lock), against the
# system's libdav1d (Debian 12: 1.0.0), and puts libgstdav1d.so next to whipcast's plugins in
# target/release, where pipelines/plugin-path.sh (GST_PLUGIN_PATH) and `make install` find it.
# Nothing of its source enters this repository: cargo fetches the published crate and builds it
# as the one dependency of a throwaway package under target/dav1d-build.
# Exits 0 once dav1ddec loads from target/release; otherwise says why and exits 1.
set -euo pipefail

VERSION=0.12.7
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/release
work=$target/dav1d-build
cargo=${CARGO:-cargo}

"$root/scripts/install-deps.sh" libdav1d-dev
echo "build-dav1d: gst-plugin-dav1d $VERSION against libdav1d $(pkg-config --modversion dav1d)"

mkdir -p "$work" "$out"
cat >"$work/Cargo.toml" <<EOF
# Written by scripts/build-dav1d.sh: a package whose only purpose is to fetch and build its
# dependency, gst-plugin-dav1d (cdylib libgstdav1d.so).
[package]
name = "whipcast-dav1d-build"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "lib.rs"

[dependencies]
gst-plugin-dav1d = "=$VERSION"

# Its own workspace: not a member of whipcast's.
[workspace]
EOF
echo "// Empty: this package only builds its dependency gst-plugin-dav1d." >"$work/lib.rs"
cp "$root/scripts/dav1d.Cargo.lock" "$work/Cargo.lock"

"$cargo" build --release --locked -p gst-plugin-dav1d \
  --manifest-path "$work/Cargo.toml" --target-dir "$work/target"
cp "$work/target/release/libgstdav1d.so" "$out/libgstdav1d.so"

if ! GST_PLUGIN_PATH="$out" gst-inspect-1.0 dav1ddec >/dev/null 2>&1; then
  echo "build-dav1d: $out/libgstdav1d.so was built but GStreamer does not load dav1ddec from it" >&2
  exit 1
fi
echo "build-dav1d: dav1ddec ready in $out/libgstdav1d.so"
