#!/bin/bash
# Run a publisher against gst-plugins-rs whipserversrc inside a fresh network
# namespace that has only `lo` (as root):
#   unshare -n bash netns_loopback.sh [--loopback] obs|chromium
# Without --loopback libnice finds no address, ICE gathering never completes and
# whipserversrc never answers the POST; with it (127.0.0.1 added to libnice) both
# publishers connect. Needs GST_PLUGIN_PATH (see gst_whipserversrc_recv.py).
set -u
here=$(cd "$(dirname "$0")" && pwd)
peers=$(dirname "$here")
flag=""; [ "${1:-}" = "--loopback" ] && { flag=--loopback; shift; }
who=${1:-obs}
ip link set lo up
out=${TMPDIR:-/tmp}/netns-$$; mkdir -p "$out"
timeout 40 /usr/bin/python3 "$here/gst_whipserversrc_recv.py" --port 8240 --seconds 30 $flag >"$out/recv.json" 2>"$out/recv.log" &
R=$!
sleep 2
if [ "$who" = obs ]; then
  "$peers/obs_like/.venv/bin/python" "$peers/obs_like/publish.py" --url http://127.0.0.1:8240/whip/endpoint \
    --codec H264 --seconds 4 --connect-timeout 8 2>"$out/pub.log"
else
  python3 "$peers/cors_proxy.py" --port 8340 --upstream http://127.0.0.1:8240 2>/dev/null &
  P=$!
  sleep 1
  node "$peers/chromium/publish.mjs" --url http://127.0.0.1:8340/whip/endpoint --codec H264 --seconds 4 2>"$out/pub.log"
  kill $P
fi
wait $R
cat "$out/recv.json"
echo "logs in $out" >&2
