#!/usr/bin/env bash
# Records one WHIP session without re-encoding, video and audio, into OUTPUT; the muxer follows
# the extension: .webm (AV1, VP8, VP9), .mp4 (H.264, H.265, AV1), .mkv (anything).
# The video leaves whipcastsrc depayloaded and parsed (output=encoded: AV1 through
# rtpav1depay-rs ! av1obufix, H.264 as avc), the audio as Opus.
#
# usage: whip-record.sh OUTPUT     (WHIP_* variables: see pipelines/whip-source.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[[ $# == 1 ]] || { header_usage; exit 2; }
output=$1
recording_sink "$output" || exit 2
export WHIP_CODECS=${WHIP_CODECS:-$codecs}
# AV1 preferred into MP4: not fragmented (see recording_sink in lib.sh).
[[ $WHIP_CODECS == AV1* ]] && recording_sink "$output" AV1
. "$(dirname "$0")/whip-source.sh"
echo "recording the next publisher ($WHIP_CODECS) -> $output with ${mux[*]}" >&2
exec gst-launch-1.0 -e "${whip[@]}" output=encoded "${recording[@]}" \
  w.video_0 ! queue ! mux.video_%u \
  w.audio_0 ! queue ! mux.audio_%u
