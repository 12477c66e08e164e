# shellcheck shell=bash
# Sourced by the WHIP pipeline scripts: `whip=(...)` is a whipcastsrc named `w` configured from
# the environment, e.g. `gst-launch-1.0 "${whip[@]}" output=encoded w.video_0 ! ...`.
#   WHIP_ADDRESS (0.0.0.0)  WHIP_PORT (8080)  WHIP_STREAM (live)  WHIP_TOKEN (empty: anyone)
#   WHIP_CODECS             video codecs accepted, best first (default: the element's)
# The element ends the stream (EOS) when the publisher leaves, so the file is finalized and
# gst-launch exits; Ctrl-C does the same (-e).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
add_our_plugins whipcastsrc || exit 1
whip_address=${WHIP_ADDRESS:-$whip_default_address} whip_port=${WHIP_PORT:-$whip_default_port}
whip_stream=${WHIP_STREAM:-$whip_default_stream}
whip=(whipcastsrc name=w address="$whip_address" port="$whip_port" stream="$whip_stream")
[[ -n ${WHIP_TOKEN:-} ]] && whip+=(token="$WHIP_TOKEN")
[[ -n ${WHIP_CODECS:-} ]] && whip+=(video-codecs="$WHIP_CODECS")
echo "WHIP endpoint: http://$whip_address:$whip_port/whip/$whip_stream${WHIP_TOKEN:+ (Bearer token set)}" >&2
