#!/usr/bin/env bash
# Records AV1 RTP (udp://PORT or an RFC 4571 file) to MP4 without re-encoding.
# usage: rtp-av1-to-mp4.sh SOURCE [OUTPUT.mp4]
. "$(dirname "$0")/lib.sh"
exec "$(dirname "$0")/rtp-av1-record.sh" "${2:-recording-$(utc_stamp).mp4}" "${1:?usage: $0 SOURCE [OUTPUT.mp4]}"
