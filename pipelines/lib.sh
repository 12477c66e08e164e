# shellcheck shell=bash
# Sourced by the scripts in pipelines/ and scripts/ (`. "$(dirname "$0")/lib.sh"`, from scripts/
# `../pipelines/lib.sh`): what they decide alike, written once.
# Sourcing it only defines functions and variables: it prints nothing and leaves the shell's
# options alone. Its functions return non-zero on failure; the callers decide to exit.

# This checkout, whatever the current folder.
whipcast_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# whipcastsrc's defaults (gst-plugin-whipsrc/src/endpoint.rs), which the WHIP scripts name in
# file names and messages (WHIP_ADDRESS, WHIP_PORT, WHIP_STREAM override them).
# shellcheck disable=SC2034 # used by the scripts that source this file
whip_default_address=0.0.0.0 whip_default_port=8080 whip_default_stream=live

# File names as whipcast writes them (app/src/naming.rs; its tests run these):
# `utc_stamp [EPOCH]`, the time (now, or EPOCH seconds) in file names: 20250101T120000Z.
utc_stamp() { date -u ${1:+-d "@$1"} +%Y%m%dT%H%M%SZ; }

# `whip_recording_name EXT [EPOCH]`, a WHIP recording: <stream>-<UTC time>.EXT.
whip_recording_name() { echo "${WHIP_STREAM:-$whip_default_stream}-$(utc_stamp "${2:-}").$1"; }

# `snapshot_name N`, the face snapshot of the Nth frame: zN.jpg.
snapshot_name() { echo "z$1.jpg"; }

# A heading between the stages of `make run` and `make demo`.
step() { printf '\n== %s\n' "$*"; }

# The usage of the running script: its top comment (after #!), without the leading "# ".
header_usage() { awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"; }

# rustup's cargo, also where the login shell has not put it on PATH.
add_cargo_path() { export PATH="$HOME/.cargo/bin:$PATH"; }

# Where cargo builds: CARGO_TARGET_DIR, as cargo reads it, else this checkout's target/.
cargo_target_dir() { echo "${CARGO_TARGET_DIR:-$whipcast_root/target}"; }

# Where scripts/build-gst-plugins-rs.sh puts the gst-plugins-rs plugins (dav1ddec, whipsink)
# inside the target folder $1.
gst_plugins_rs_dir() { echo "$1/gst-plugins-rs"; }

have_element() { gst-inspect-1.0 "$1" >/dev/null 2>&1; }

prepend_plugin_path() { export GST_PLUGIN_PATH="$1${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"; }

# The gst-plugins-rs plugins built beside ours (scripts/build-gst-plugins-rs.sh), for scripts
# that run whipcast (our plugins are built into it).
add_extra_plugins() {
  local dir
  dir=$(gst_plugins_rs_dir "$(cargo_target_dir)")
  if [[ -d $dir ]]; then prepend_plugin_path "$dir"; fi
}

# whipcast's plugins where they are not installed in GStreamer's system plugin directory
# (WHIPCAST_PLUGIN_DIR wins, else the release build, else the debug build, in cargo_target_dir), the
# gst-plugins-rs ones in front of them, and ELEMENT must load.
add_our_plugins() {
  local element=$1 dir target
  target=$(cargo_target_dir)
  for dir in "${WHIPCAST_PLUGIN_DIR:-}" "$target/release" "$target/debug"; do
    if [[ -n $dir && -e $dir/libgstav1rtp.so ]]; then
      prepend_plugin_path "$dir"
      break
    fi
  done
  add_extra_plugins
  if ! have_element "$element"; then
    echo "element $element not found: run 'make release' first" >&2
    return 1
  fi
}

# GPU=1 asks for NVIDIA's elements where this GStreamer has them.
gpu_wanted() { [[ ${GPU:-0} == 1 ]]; }

is_nvidia() { [[ $1 == nv* ]]; }

# The decoders decoders.txt lists for CODEC (without CODEC: for every codec), best first, one a
# line; fails when it lists none.
table_decoders() {
  local line words found=1
  while IFS= read -r line; do
    read -r -a words <<<"${line%%#*}"
    if ((${#words[@]} > 1)) && [[ -z ${1:-} || ${words[0]} == "$1" ]]; then
      printf '%s\n' "${words[@]:1}"
      found=0
    fi
  done <"$whipcast_root/pipelines/decoders.txt"
  return $found
}

# The decoder for CODEC: the first in decoders.txt that this GStreamer has, NVIDIA's only with GPU=1.
pick_decoder() {
  local decoders=() tried=() decoder
  mapfile -t decoders < <(table_decoders "$1")
  if ((${#decoders[@]} == 0)); then
    echo "no decoder known for $1" >&2
    return 1
  fi
  for decoder in "${decoders[@]}"; do
    if is_nvidia "$decoder" && ! gpu_wanted; then continue; fi
    if have_element "$decoder"; then
      echo "$decoder"
      return 0
    fi
    tried+=("$decoder")
  done
  echo "no $1 decoder installed (tried: ${tried[*]})" >&2
  return 1
}

# Says which decoder runs and whether that is the GPU.
announce_decoder() {
  if is_nvidia "$1"; then
    echo "decoder: $1 (NVIDIA GPU)" >&2
  elif gpu_wanted; then
    echo "decoder: $1 (CPU; no NVIDIA decoder for this codec here)" >&2
  else
    echo "decoder: $1 (CPU)" >&2
  fi
}

# NVIDIA's decoders in decoders.txt, one a line.
nvidia_decoders() {
  local decoder
  while read -r decoder; do
    if is_nvidia "$decoder"; then echo "$decoder"; fi
  done < <(table_decoders)
}

# `recording_sink OUTPUT [AV1]` sets `recording`, the muxer for OUTPUT's extension (named `mux`) and
# the file sink behind it, `mux` the muxer alone and `codecs` the video codecs that container
# takes. Crash-safe: MP4 is written in fragments of 1 s (with its duration and index added on a
# clean stop) and `fragmentsync` hands filesink whole fragments and Matroska elements, each written
# at once and fsynced, so a file cut by a crash still plays up to its last second.
# AV1 in MP4 (second argument AV1) is not fragmented: GStreamer 1.22's av1parse stops decoding a
# fragmented AV1 MP4 at its second fragment (qtdemux's caps change there); use .webm or .mkv for
# crash-safe AV1.
# shellcheck disable=SC2034 # codecs and recording are the caller's
recording_sink() {
  case $1 in
    *.webm) mux=(webmmux) codecs=AV1,VP9,VP8 ;;
    *.mp4) mux=(mp4mux) codecs=H264,H265,AV1
           [[ ${2:-} == AV1 ]] || mux+=(fragment-duration=1000) ;;
    *.mkv) mux=(matroskamux) codecs=AV1,H264,H265,VP9,VP8 ;;
    *) echo "unknown output type: $1 (use .webm, .mp4 or .mkv)" >&2; return 2 ;;
  esac
  recording=("${mux[@]}" name=mux ! fragmentsync ! filesink location="$1")
}
