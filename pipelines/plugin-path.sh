# Sourced by the pipeline scripts as `. plugin-path.sh ELEMENT`: makes whipcast's plugins
# findable when they are not installed in the system GStreamer plugin directory, and checks that
# ELEMENT is there. WHIPCAST_PLUGIN_DIR wins; else the release build, else the debug build of
# this checkout.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for dir in "${WHIPCAST_PLUGIN_DIR:-}" "$root/target/release" "$root/target/debug"; do
  if [[ -n $dir && -e $dir/libgstav1rtp.so ]]; then
    export GST_PLUGIN_PATH="$dir${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    break
  fi
done
# gst-plugins-rs plugins built beside ours (dav1ddec, whipsink): scripts/build-gst-plugins-rs.sh.
if [[ -d $root/target/gst-plugins-rs ]]; then
  export GST_PLUGIN_PATH="$root/target/gst-plugins-rs${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
fi
if ! gst-inspect-1.0 "${1:-rtpav1depay-rs}" >/dev/null 2>&1; then
  echo "element ${1:-rtpav1depay-rs} not found: run 'make release' first" >&2
  exit 1
fi
