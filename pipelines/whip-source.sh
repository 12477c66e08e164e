# Sourced by the WHIP pipeline scripts: `whip=(...)` is a whipserversrc named `w` configured from
# the environment, e.g. `gst-launch-1.0 "${whip[@]}" output=encoded w.video_0 ! ...`.
#   WHIP_ADDRESS (0.0.0.0)  WHIP_PORT (8080)  WHIP_STREAM (live)  WHIP_TOKEN (empty: anyone)
#   WHIP_CODECS             video codecs accepted, best first (default: the element's)
# The element ends the stream (EOS) when the publisher leaves, so the file is finalized and
# gst-launch exits; Ctrl-C does the same (-e).
. "$(dirname "${BASH_SOURCE[0]}")/plugin-path.sh" whipserversrc
whip=(whipserversrc name=w address="${WHIP_ADDRESS:-0.0.0.0}" port="${WHIP_PORT:-8080}" stream="${WHIP_STREAM:-live}")
[[ -n ${WHIP_TOKEN:-} ]] && whip+=(token="$WHIP_TOKEN")
[[ -n ${WHIP_CODECS:-} ]] && whip+=(video-codecs="$WHIP_CODECS")
echo "WHIP endpoint: http://${WHIP_ADDRESS:-0.0.0.0}:${WHIP_PORT:-8080}/whip/${WHIP_STREAM:-live}${WHIP_TOKEN:+ (Bearer token set)}" >&2
