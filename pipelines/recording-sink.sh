# Sourced by the recording scripts as `. recording-sink.sh OUTPUT [AV1]`: sets `recording`, the muxer
# for OUTPUT's extension (named `mux`) and the file sink behind it, and `codecs`, the video codecs
# that container takes. Crash-safe: MP4 is written in fragments of 1 s (with its duration and index
# added on a clean stop) and `fragmentsync` hands filesink whole fragments and Matroska elements, each
# written at once and fsynced, so a file cut by a crash still plays up to its last second.
# AV1 in MP4 (second argument AV1) is not fragmented: GStreamer 1.22's av1parse stops decoding a
# fragmented AV1 MP4 at its second fragment (qtdemux's caps change there); use .webm or .mkv for
# crash-safe AV1.
case $1 in
  *.webm) mux=(webmmux) codecs=AV1,VP9,VP8 ;;
  *.mp4) mux=(mp4mux) codecs=H264,H265,AV1
         [[ ${2:-} == AV1 ]] || mux+=(fragment-duration=1000) ;;
  *.mkv) mux=(matroskamux) codecs=AV1,H264,H265,VP9,VP8 ;;
  *) echo "unknown output type: $1 (use .webm, .mp4 or .mkv)" >&2; exit 2 ;;
esac
recording=("${mux[@]}" name=mux ! fragmentsync ! filesink location="$1")
