#!/usr/bin/env bash
# usage: install-plugins.sh install|uninstall
# Copies whipcast's plugins from the release build (and libgstdav1d.so from target/gst-plugins-rs/,
# when `make dav1d` built it) into GStreamer's system plugin directory, so every GStreamer program finds them without
# GST_PLUGIN_PATH; `uninstall` removes them again. Uses sudo when not root and the directory is
# not writable. PLUGINDIR overrides the directory (default: pkg-config's pluginsdir of
# gstreamer-1.0); DESTDIR is put before it (staging); WHIPCAST_BUILD_DIR overrides where the
# plugins come from (default: target/release, or $CARGO_TARGET_DIR/release).
# Never overwrites or removes a file that a Debian package owns.
set -euo pipefail
. "$(dirname "$0")/../pipelines/lib.sh"

action=${1:-}
target=$(cargo_target_dir)
build=${WHIPCAST_BUILD_DIR:-$target/release}
extra=$(gst_plugins_rs_dir "$target")
plugindir=${PLUGINDIR:-$(pkg-config --variable=pluginsdir gstreamer-1.0)}
dir=${DESTDIR:-}$plugindir
plugins=(libgstav1rtp.so libgstwhipsrc.so libgstfacemark.so)
optional=(libgstdav1d.so)

# sudo only where it is needed: not root, and the directory (or its first existing parent) is
# not writable.
sudo=()
existing=$dir
while [[ ! -e $existing ]]; do existing=$(dirname "$existing"); done
if [[ $(id -u) != 0 && ! -w $existing ]]; then sudo=(sudo); fi

packaged() { dpkg-query -S "$1" >/dev/null 2>&1; }

case $action in
  install)
    files=()
    for p in "${plugins[@]}"; do
      [[ -e $build/$p ]] || { echo "install-plugins: $build/$p missing: run 'make release' first" >&2; exit 1; }
      files+=("$build/$p")
    done
    for p in "${optional[@]}"; do [[ -e $extra/$p ]] && files+=("$extra/$p"); done
    "${sudo[@]}" mkdir -p "$dir"
    for file in "${files[@]}"; do
      p=$(basename "$file")
      if packaged "$dir/$p"; then
        echo "install-plugins: $dir/$p belongs to a Debian package: left as it is" >&2
        continue
      fi
      "${sudo[@]}" install -m 0644 "$file" "$dir/$p"
      echo "install-plugins: $dir/$p"
    done
    # Where it matters (the real directory), check that GStreamer finds the elements by itself.
    if [[ -z ${DESTDIR:-} && -z ${PLUGINDIR:-} ]]; then
      for element in whipcastsrc rtpav1depay-rs av1obufix facemark; do
        if ! env -u GST_PLUGIN_PATH gst-inspect-1.0 "$element" >/dev/null 2>&1; then
          echo "install-plugins: installed, but gst-inspect-1.0 does not find $element" >&2
          exit 1
        fi
      done
      echo "install-plugins: gst-inspect-1.0 finds whipcastsrc, rtpav1depay-rs, av1obufix and facemark without GST_PLUGIN_PATH"
    fi
    ;;
  uninstall)
    for p in "${plugins[@]}" "${optional[@]}"; do
      [[ -e $dir/$p ]] || continue
      if packaged "$dir/$p"; then
        echo "install-plugins: $dir/$p belongs to a Debian package: left as it is" >&2
        continue
      fi
      "${sudo[@]}" rm -f "$dir/$p"
      echo "install-plugins: removed $dir/$p"
    done
    ;;
  *)
    echo "usage: $0 install|uninstall" >&2
    exit 2
    ;;
esac
