#!/usr/bin/env bash
# Records a WHIP publisher's H.264 video to MP4 without re-encoding, with its Opus audio.
# usage: whip-h264-to-mp4.sh [OUTPUT.mp4]   (default: <stream>-<UTC time>.mp4; WHIP_* variables: see whip-source.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export WHIP_CODECS=${WHIP_CODECS:-H264}
exec "$(dirname "$0")/whip-record.sh" "${1:-$(whip_recording_name mp4)}"
