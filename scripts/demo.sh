#!/usr/bin/env bash
# `make demo`: the whipcast server and publishers on this machine, no OBS, no network. A face
# picture sliding across the frame is published as AV1 + Opus for 15 s (gst-plugins-rs whipsink),
# then headless Chromium's fake camera when Chromium is installed; then it prints what was
# recorded: each WebM with its frames and duration, and the face snapshots.
#   DEMO_OUT (default demo-output), DEMO_PORT (8089), DEMO_SECONDS (15),
#   WHIPCAST_PROFILE=debug to use debug builds (the tests do).
set -euo pipefail
. "$(dirname "$0")/../pipelines/lib.sh"
cd "$whipcast_root"
add_cargo_path
out=${DEMO_OUT:-demo-output} port=${DEMO_PORT:-8089} seconds=${DEMO_SECONDS:-15}
profile=${WHIPCAST_PROFILE:-release}
built=$(cargo_target_dir)

if [[ $profile == release ]]; then
  step "Debian packages"
  scripts/install-deps.sh
  step "building whipcast (release) and the publisher (gst-plugins-rs whipsink)"
  cargo build --release -p whipcast
  cargo build -p whipcast-tests --bin whip-publish
  step "face models"
  scripts/fetch-models.sh
fi
for binary in "$built/$profile/whipcast" "$built/debug/whip-publish"; do
  [[ -x $binary ]] || { echo "$binary is missing: build it first" >&2; exit 1; }
done
add_extra_plugins

publishers=(gst)
chromium_peer=tests/peers/chromium
if command -v chromium >/dev/null && [[ -d $chromium_peer/node_modules/playwright-core ]]; then
  publishers+=(chromium)
else
  echo "(Chromium or tests/peers/chromium not set up: make test-deps adds it; publishing with GStreamer only)"
fi

mkdir -p "$out"
token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
log=$out/whipcast.log
step "whipcast on 127.0.0.1:$port, recording into $out/"
WHIP_TOKEN=$token "$built/$profile/whipcast" serve --address 127.0.0.1 --port "$port" --stream demo \
  --recordings "$out" --sessions ${#publishers[@]} --snapshot-every 60 --snapshot-frames 0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "whipcast is serving" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log"; echo "whipcast did not start" >&2; exit 1; }
  sleep 0.2
done
url=http://127.0.0.1:$port/whip/demo

for publisher in "${publishers[@]}"; do
  case $publisher in
    gst)
      step "publishing a sliding face (AV1 + Opus, ${seconds} s) with gst-plugins-rs whipsink"
      "$built/debug/whip-publish" "$url" --codec av1 --audio --seconds "$seconds" --token "$token" \
        --image gst-plugin-facemark/tests/data/astronaut.png ;;
    chromium)
      step "publishing Chromium's fake camera (AV1 + Opus, ${seconds} s)"
      node "$chromium_peer/publish.mjs" --url "$url" --codec AV1 --audio --seconds "$seconds" --token "$token" \
        | sed 's/,"stats".*/}/' ;;
  esac
  sleep 1
done

step "waiting for the recordings to be finalized"
wait $server || { cat "$log"; echo "whipcast failed" >&2; exit 1; }
trap - EXIT
grep -E "^(session|recorded|facemark)" "$log"
step "what was recorded"
shopt -s nullglob
files=("$out"/demo-*.webm "$out"/demo-*.mp4)
"$built/$profile/whipcast" check "${files[@]}"
for dir in "$out"/demo-*/; do
  # shellcheck disable=SC2012 # whipcast's names (z<number>.jpg), listed in number order
  echo "snapshots in $dir: $(cd "$dir" && ls | sort -V | tr '\n' ' ')"
done
