#!/usr/bin/env bash
# Records a WHIP publisher's AV1 video to WebM without re-encoding, with its Opus audio.
# usage: whip-av1-to-webm.sh [OUTPUT.webm]   (default: <stream>-<UTC time>.webm; WHIP_* variables: see whip-source.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export WHIP_CODECS=${WHIP_CODECS:-AV1}
exec "$(dirname "$0")/whip-record.sh" "${1:-$(whip_recording_name webm)}"
