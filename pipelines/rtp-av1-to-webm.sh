#!/usr/bin/env bash
# Records AV1 RTP (udp://PORT or an RFC 4571 file) to WebM without re-encoding.
# usage: rtp-av1-to-webm.sh SOURCE [OUTPUT.webm]
. "$(dirname "$0")/lib.sh"
exec "$(dirname "$0")/rtp-av1-record.sh" "${2:-recording-$(utc_stamp).webm}" "${1:?usage: $0 SOURCE [OUTPUT.webm]}"
