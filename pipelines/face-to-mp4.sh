#!/usr/bin/env bash
# Decode a video, mark faces with `facemark` and record the annotated video as H.264 in MP4.
#
# usage: pipelines/face-to-mp4.sh INPUT [OUTPUT.mp4] [extra facemark properties...]
#   INPUT   a file path, a URI, or `whip` (a WHIP publisher); OUTPUT defaults to facemark.mp4
#   e.g.    pipelines/face-to-mp4.sh talk.webm out.mp4 max-faces=2 draw=box+contours
# GPU=1: NVIDIA decoding and nvh264enc where present, else x264enc (see video-source.sh).
# Needs x264enc (gstreamer1.0-plugins-ugly) and the models (scripts/fetch-models.sh); the plugin
# is found as pipelines/lib.sh says (add_our_plugins).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
add_our_plugins facemark || exit 1
IN=${1:?usage: $0 INPUT [OUTPUT.mp4] [facemark properties...]}
OUTFILE=${2:-facemark.mp4}
recording_sink "$OUTFILE" || exit 2
shift $(( $# >= 2 ? 2 : 1 ))

. "$(dirname "$0")/video-source.sh"
video_source "$IN"

# No B-frames: GStreamer 1.22's qtdemux drops the last ones of a fragmented MP4.
encoder=(x264enc speed-preset=veryfast bframes=0)
if gpu_wanted; then
  if have_element nvh264enc; then
    encoder=(nvh264enc) && echo "encoder: nvh264enc (NVIDIA GPU)" >&2
  else
    echo "encoder: x264enc (CPU; no nvh264enc here)" >&2
  fi
fi

exec gst-launch-1.0 -e \
  "${src[@]}" \
  ! videoconvert ! "video/x-raw,format={RGBx,BGRx,RGBA,BGRA,RGB,BGR}" \
  ! facemark "$@" \
  ! videoconvert ! video/x-raw,format=I420 ! "${encoder[@]}" \
  ! video/x-h264,profile=high ! h264parse ! "${recording[@]}"
