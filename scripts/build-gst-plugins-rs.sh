#!/usr/bin/env bash
# Builds gst-plugins-rs plugins that whipcast's pipelines use and Debian 12 does not ship, from
# the crates gst-plugins-rs publishes on crates.io (exact versions below, their dependencies as
# in scripts/<plugin>.Cargo.lock), into target/gst-plugins-rs/, where the scripts (GST_PLUGIN_PATH:
# pipelines/lib.sh) and `make install` find them:
#   dav1d       dav1ddec, against the system's libdav1d (Debian 12: 1.0.0)
#   webrtchttp  whipsink (pipelines/whip-relay.sh publishes onward with it)
# Nothing of their source enters this repository: cargo fetches the published crate and builds
# it as the one dependency of a throwaway package under target/<plugin>-build.
# usage: build-gst-plugins-rs.sh PLUGIN...   Exits 0 once every element loads; else says why, 1.
set -euo pipefail
. "$(dirname "$0")/../pipelines/lib.sh"

target=$(cargo_target_dir)
out=$(gst_plugins_rs_dir "$target")
cargo=${CARGO:-cargo}
mkdir -p "$out"

build() { # crate dependency-spec element
  local crate=$1 spec=$2 element=$3 plugin=${1#gst-plugin-}
  local work=$target/$plugin-build lib=libgst$plugin.so
  echo "build-gst-plugins-rs: $crate $spec ($element)"
  mkdir -p "$work"
  cat >"$work/Cargo.toml" <<TOML
# Written by scripts/build-gst-plugins-rs.sh: a package whose only purpose is to fetch and build
# its dependency, $crate (cdylib $lib).
[package]
name = "whipcast-$plugin-build"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "lib.rs"

[dependencies]
$crate = $spec

# Its own workspace: not a member of whipcast's.
[workspace]
TOML
  echo "// Empty: this package only builds its dependency $crate." >"$work/lib.rs"
  cp "$whipcast_root/scripts/$plugin.Cargo.lock" "$work/Cargo.lock"
  "$cargo" build --release --locked -p "$crate" --manifest-path "$work/Cargo.toml" --target-dir "$work/target"
  cp "$work/target/release/$lib" "$out/$lib"
  if ! GST_PLUGIN_PATH="$out" have_element "$element"; then
    echo "build-gst-plugins-rs: $out/$lib was built but GStreamer does not load $element from it" >&2
    return 1
  fi
  echo "build-gst-plugins-rs: $element ready in $out/$lib"
}

(($#)) || { header_usage; exit 2; }
for plugin in "$@"; do
  case $plugin in
    dav1d)
      "$whipcast_root/scripts/install-deps.sh" libdav1d-dev
      echo "build-gst-plugins-rs: against libdav1d $(pkg-config --modversion dav1d)"
      build gst-plugin-dav1d '"=0.12.7"' dav1ddec ;;
    webrtchttp) build gst-plugin-webrtchttp '{ version = "=0.15.4", default-features = false, features = ["rustls-ring"] }' whipsink ;;
    *) echo "unknown plugin $plugin (dav1d, webrtchttp)" >&2; exit 2 ;;
  esac
done
