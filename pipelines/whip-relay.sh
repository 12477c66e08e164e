#!/usr/bin/env bash
# Relays a WHIP publisher onward: ingest (whipcastsrc, decoded), facemark, re-encode to
# H.264 + Opus, and publish to another WHIP server with gst-plugins-rs's whipsink.
#
# usage: whip-relay.sh TARGET_URL    e.g. https://other.example/whip/live
#   RELAY_TOKEN   the target's Bearer token
#   WHIP_*        the ingest side (see whip-source.sh)
#   GPU=1         nvh264enc instead of x264enc where present
# whipsink comes from `make relay-plugins` (built beside ours). The relay runs until Ctrl-C:
# publisher after publisher goes onward in one continuous outgoing session (on-disconnect=wait);
# stopping it ends the outgoing session with DELETE.
set -euo pipefail
target=${1:?usage: $0 TARGET_URL}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/whip-source.sh"
add_our_plugins facemark || exit 1
if ! have_element whipsink; then
  echo "whipsink not found: run 'make relay-plugins' (builds gst-plugins-rs's webrtchttp plugin)" >&2
  exit 1
fi
encoder=(x264enc tune=zerolatency speed-preset=veryfast key-int-max=60 bframes=0)
if gpu_wanted && have_element nvh264enc; then
  encoder=(nvh264enc zerolatency=true gop-size=60 bframes=0)
fi
echo "relaying to $target, video re-encoded with ${encoder[0]}" >&2
# facemark in a live pipeline marks the latest frame it could (mode=auto): the relay keeps real time.
exec gst-launch-1.0 "${whip[@]}" output=decoded on-disconnect=wait \
  whipsink name=out whip-endpoint="$target" ${RELAY_TOKEN:+auth-token="$RELAY_TOKEN"} \
  w.video_0 ! queue ! videoconvert ! facemark ! videoconvert ! video/x-raw,format=I420 \
  ! "${encoder[@]}" ! video/x-h264,profile=constrained-baseline ! h264parse \
  ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! out. \
  w.audio_0 ! queue ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! out.
