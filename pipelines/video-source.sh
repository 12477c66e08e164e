# shellcheck shell=bash
# Sourced by the face scripts: `src=(...)` decodes INPUT to raw video for gst-launch-1.0.
#   INPUT = whip          a WHIP publisher (whipcastsrc; WHIP_* variables: see whip-source.sh;
#                         WHIP_CODECS picks the one video codec accepted, default AV1)
#   INPUT = FILE or URI   anything uridecodebin plays
# GPU=1 prefers NVIDIA's decoders (nvav1dec, nvh264dec, ...) where they exist and says which
# decoder is used; without one it falls back to the CPU decoders (pipelines/decoders.txt).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck disable=SC2034 # src is the caller's
video_source() {
  local input=$1
  if [[ $input == whip ]]; then
    export WHIP_CODECS=${WHIP_CODECS:-AV1}
    . "$(dirname "${BASH_SOURCE[0]}")/whip-source.sh"
    local decoder parser=()
    decoder=$(pick_decoder "$WHIP_CODECS") || exit 1
    announce_decoder "$decoder"
    case $WHIP_CODECS in H264) parser=(h264parse !) ;; H265) parser=(h265parse !) ;; esac
    src=("${whip[@]}" output=encoded w.video_0 ! queue ! "${parser[@]}" "$decoder")
    return
  fi
  local uri=$input
  [[ $input == *://* ]] || uri="file://$(realpath "$input")"
  if gpu_wanted; then
    # decodebin picks by rank: NVIDIA's decoders first, when this GStreamer has them.
    local ranks=() name
    for name in $(nvidia_decoders); do
      have_element "$name" && ranks+=("$name:MAX")
    done
    if ((${#ranks[@]})); then
      GST_PLUGIN_FEATURE_RANK=$(IFS=,; echo "${ranks[*]}")${GST_PLUGIN_FEATURE_RANK:+,$GST_PLUGIN_FEATURE_RANK}
      export GST_PLUGIN_FEATURE_RANK
      echo "decoder: NVIDIA GPU where the codec allows (${ranks[*]%%:*})" >&2
    else
      echo "decoder: CPU (no NVIDIA decoder in this GStreamer: nvcodec needs an NVIDIA GPU and driver)" >&2
    fi
  fi
  src=(uridecodebin uri="$uri")
}
