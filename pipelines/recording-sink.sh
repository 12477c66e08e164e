# Sourced by the recording scripts as `. recording-sink.sh OUTPUT`: sets `recording`, the muxer
# for OUTPUT's extension (named `mux`) and the file sink behind it, and `codecs`, the video codecs
# that container takes. Crash-safe: MP4 is written in fragments of 1 s (with its duration and index
# added on a clean stop) and `fragmentsync` hands filesink whole fragments and Matroska elements, each
# written at once and fsynced, so a file cut by a crash still plays up to its last second.
case $1 in
  *.webm) mux=(webmmux) codecs=AV1,VP9,VP8 ;;
  *.mp4) mux=(mp4mux fragment-duration=1000) codecs=H264,H265,AV1 ;;
  *.mkv) mux=(matroskamux) codecs=AV1,H264,H265,VP9,VP8 ;;
  *) echo "unknown output type: $1 (use .webm, .mp4 or .mkv)" >&2; exit 2 ;;
esac
recording=("${mux[@]}" name=mux ! fragmentsync ! filesink location="$1")
