#!/usr/bin/env bash
# Records a WHIP publisher's video (any codec) to Matroska without re-encoding, with its Opus audio.
# usage: whip-to-mkv.sh [OUTPUT.mkv]   (default: <stream>-<UTC time>.mkv; WHIP_* variables: see whip-source.sh)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
exec "$(dirname "$0")/whip-record.sh" "${1:-$(whip_recording_name mkv)}"
