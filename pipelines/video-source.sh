# Sourced by the face scripts: `src=(...)` decodes INPUT to raw video for gst-launch-1.0.
#   INPUT = whip          a WHIP publisher (whipserversrc; WHIP_* variables: see whip-source.sh;
#                         WHIP_CODECS picks the one video codec accepted, default AV1)
#   INPUT = FILE or URI   anything uridecodebin plays
# GPU=1 prefers NVIDIA's decoders (nvav1dec, nvh264dec, ...) where they exist and says which
# decoder is used; without one it falls back to the CPU decoders (dav1ddec, av1dec, avdec_h264).

# The decoder for CODEC: the first of the list that this GStreamer has.
pick_decoder() {
  local candidates
  case $1 in
    AV1) candidates="nvav1dec dav1ddec av1dec" ;;
    H264) candidates="nvh264dec avdec_h264" ;;
    H265) candidates="nvh265dec avdec_h265" ;;
    VP8) candidates="nvvp8dec vp8dec" ;;
    VP9) candidates="nvvp9dec vp9dec" ;;
    *) echo "no decoder known for $1" >&2; return 1 ;;
  esac
  [[ ${GPU:-0} == 1 ]] || candidates=${candidates//nv*dec /}
  for decoder in $candidates; do
    if gst-inspect-1.0 "$decoder" >/dev/null 2>&1; then echo "$decoder"; return 0; fi
  done
  echo "no $1 decoder installed (tried: $candidates)" >&2
  return 1
}

# Says which decoder runs and whether that is the GPU.
announce_decoder() {
  case $1 in
    nv*) echo "decoder: $1 (NVIDIA GPU)" >&2 ;;
    *) if [[ ${GPU:-0} == 1 ]]; then
         echo "decoder: $1 (CPU; no NVIDIA decoder for this codec here)" >&2
       else
         echo "decoder: $1 (CPU)" >&2
       fi ;;
  esac
}

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
  if [[ ${GPU:-0} == 1 ]]; then
    # decodebin picks by rank: NVIDIA's decoders first, when this GStreamer has them.
    local ranks=() name
    for name in nvav1dec nvh264dec nvh265dec nvvp8dec nvvp9dec; do
      gst-inspect-1.0 "$name" >/dev/null 2>&1 && ranks+=("$name:MAX")
    done
    if ((${#ranks[@]})); then
      export GST_PLUGIN_FEATURE_RANK=$(IFS=,; echo "${ranks[*]}")${GST_PLUGIN_FEATURE_RANK:+,$GST_PLUGIN_FEATURE_RANK}
      echo "decoder: NVIDIA GPU where the codec allows (${ranks[*]%%:*})" >&2
    else
      echo "decoder: CPU (no NVIDIA decoder in this GStreamer: nvcodec needs an NVIDIA GPU and driver)" >&2
    fi
  fi
  src=(uridecodebin uri="$uri")
}
