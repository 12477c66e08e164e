#!/usr/bin/env bash
# Decode a video, mark faces with `facemark` and record the annotated video as H.264 in MP4.
#
# usage: pipelines/face-to-mp4.sh INPUT [OUTPUT.mp4] [extra facemark properties...]
#   INPUT   a file path or a URI; OUTPUT defaults to facemark.mp4
#   e.g.    pipelines/face-to-mp4.sh talk.webm out.mp4 max-faces=2 draw=box+contours
# Needs x264enc (gstreamer1.0-plugins-ugly) and the models (scripts/fetch-models.sh);
# pipelines/plugin-path.sh finds the plugin.
set -euo pipefail
. "$(dirname "$0")/plugin-path.sh" facemark
IN=${1:?usage: $0 INPUT [OUTPUT.mp4] [facemark properties...]}
OUTFILE=${2:-facemark.mp4}
shift $(( $# >= 2 ? 2 : 1 ))

case "$IN" in
  *://*) URI=$IN ;;
  *) URI="file://$(realpath "$IN")" ;;
esac

exec gst-launch-1.0 -e \
  uridecodebin uri="$URI" \
  ! videoconvert ! "video/x-raw,format={RGBx,BGRx,RGBA,BGRA,RGB,BGR}" \
  ! facemark "$@" \
  ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast \
  ! video/x-h264,profile=high ! h264parse ! mp4mux ! filesink location="$OUTFILE"
