# Sourced by scripts that run whipcast (which has our plugins built in): makes the gst-plugins-rs
# plugins built by scripts/build-gst-plugins-rs.sh (dav1ddec) findable.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -d $root/target/gst-plugins-rs ]]; then
  export GST_PLUGIN_PATH="$root/target/gst-plugins-rs${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
fi
