# Sourced by scripts: makes GStreamer plugins built beside ours (dav1ddec) findable by whipcast,
# which has its own plugins built in. Prints which AV1 decoder facemark will get.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -e $root/target/extra-plugins/libgstdav1d.so ]]; then
  export GST_PLUGIN_PATH="$root/target/extra-plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
fi
