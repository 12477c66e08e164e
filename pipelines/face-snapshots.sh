#!/usr/bin/env bash
# Decode a video, mark faces with `facemark`, and save an annotated JPEG of every 100th frame of
# the first 1000: z100.jpg (the 100th frame), z200.jpg, ..., z1000.jpg.
#
# usage: pipelines/face-snapshots.sh INPUT [OUTDIR]
#   INPUT   a file path, a URI (file://, http://, rtsp://...) or `whip` (a WHIP publisher)
#   OUTDIR  where the JPEGs go (default: the current folder)
# GPU=1: NVIDIA decoders where present (see video-source.sh). The models must be installed (scripts/fetch-models.sh); the plugin is found as pipelines/lib.sh says (add_our_plugins).
# A shorter input gives fewer files. Frames are counted from 1, in decoding order.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
add_our_plugins facemark || exit 1
IN=${1:?usage: $0 INPUT [OUTDIR]}
OUT=${2:-.}
EVERY=100
FRAMES=1000

. "$(dirname "$0")/video-source.sh"
video_source "$IN"
mkdir -p "$OUT"
TMP=$(mktemp -d "$OUT/.face-snapshots.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# identity eos-after stops after FRAMES frames; multifilesink numbers every frame from 0; the
# snapshots are then renamed and the other frames removed (JPEG costs a few ms per frame).
gst-launch-1.0 -q -e \
  "${src[@]}" \
  ! videoconvert ! "video/x-raw,format={RGBx,BGRx,RGBA,BGRA,RGB,BGR}" \
  ! identity eos-after=$FRAMES \
  ! facemark \
  ! videoconvert ! jpegenc quality=90 \
  ! multifilesink location="$TMP/f%06d.jpg"
for ((n = EVERY; n <= FRAMES; n += EVERY)); do
  f=$(printf '%s/f%06d.jpg' "$TMP" $((n - 1)))
  [ -e "$f" ] && mv "$f" "$OUT/$(snapshot_name $n)"
done
# shellcheck disable=SC2012,SC2046 # names written above (a number in each); none is no error
ls "$OUT"/$(snapshot_name '*') 2>/dev/null | sort -V
