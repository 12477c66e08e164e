#!/usr/bin/env bash
# Records a WHIP publisher's video (any codec) to Matroska without re-encoding, with its Opus audio.
# usage: whip-to-mkv.sh [OUTPUT.mkv]   (default: <stream>-<UTC time>.mkv; WHIP_* variables: see whip-source.sh)
set -euo pipefail
exec "$(dirname "$0")/whip-record.sh" "${1:-${WHIP_STREAM:-live}-$(date -u +%Y%m%dT%H%M%SZ).mkv}"
