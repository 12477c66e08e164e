#!/usr/bin/env bash
# `make run`: installs what is missing, builds whipcast in release mode, fetches the face models
# and starts the server: WHIP on 0.0.0.0:8080, each session recorded into recordings/, faces
# marked on annotated snapshots. Arguments go to `whipcast serve` (see `whipcast serve --help`),
# e.g. `make run ARGS="--port 9000 --stream studio"`. WHIP_TOKEN sets the Bearer token.
set -euo pipefail
. "$(dirname "$0")/../pipelines/lib.sh"
cd "$whipcast_root"
add_cargo_path

step "Debian packages"
scripts/install-deps.sh
step "building whipcast and the plugins (release; the first build takes a while)"
cargo build --release -p whipcast -p gst-plugin-av1rtp -p gst-plugin-whipsrc -p gst-plugin-facemark
step "face models"
scripts/fetch-models.sh
step "dav1ddec (fast AV1 decoding for facemark)"
scripts/build-gst-plugins-rs.sh dav1d || echo "dav1ddec could not be built: facemark decodes AV1 with av1dec (libaom)"
add_extra_plugins
step "starting the server"
exec "$(cargo_target_dir)/release/whipcast" serve "$@"
