#!/usr/bin/env bash
# Records an AV1 RTP stream without re-encoding: rtpav1depay-rs ! av1obufix ! muxer.
# The muxer follows the output's extension: .webm (webmmux), .mkv (matroskamux), .mp4 (mp4mux).
#
# usage: rtp-av1-record.sh OUTPUT SOURCE
#   SOURCE  udp://PORT   RTP on UDP (payload type from $PT, default 96), through a jitter buffer
#           FILE         an RFC 4571 capture (u16 length + packet), e.g. from rtpstreampay
# Ctrl-C stops the recording and finalizes the file (gst-launch-1.0 -e).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[[ $# == 2 ]] || { header_usage; exit 2; }
output=$1 source=$2
add_our_plugins rtpav1depay-rs || exit 1
recording_sink "$output" AV1 || exit 2
caps="media=video,clock-rate=90000,encoding-name=AV1,payload=${PT:-96}"
case $source in
  udp://*)
    src=(udpsrc port="${source#udp://}" caps="application/x-rtp,$caps" ! rtpjitterbuffer latency="${LATENCY_MS:-200}") ;;
  *)
    [[ -r $source ]] || { echo "cannot read $source" >&2; exit 2; }
    src=(filesrc location="$source" ! "application/x-rtp-stream,$caps" ! rtpstreamdepay) ;;
esac
echo "recording $source -> $output with ${mux[*]} (Ctrl-C to stop)" >&2
exec gst-launch-1.0 -e "${src[@]}" ! rtpav1depay-rs ! av1obufix ! "${recording[@]}"
