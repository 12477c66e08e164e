#!/bin/sh
# Create tests/peers/obs_like/.venv (idempotent) with pinned libdatachannel-py,
# and pre-encode the test clips into .media (also idempotent).
# Needs pyenv's Python 3.13 (cp313 wheels only) and gst-launch-1.0 with x264enc
# (gstreamer1.0-plugins-ugly), av1enc (-bad), opusenc (-base).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PY313=${PY313:-/root/.pyenv/versions/3.13.0/bin/python3}
venv="$here/.venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import libdatachannel' 2>/dev/null \
   && "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx 'libdatachannel-py==2026.1.0'; then
  echo "obs_like: venv ok ($venv)" >&2
else
  [ -x "$PY313" ] || { echo "obs_like: need Python 3.13 at $PY313 (set PY313)" >&2; exit 1; }
  rm -rf "$venv"
  "$PY313" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "obs_like: venv created ($venv)" >&2
fi
# encode the clips once (about 10 s)
"$venv/bin/python" -c "
import sys; sys.path.insert(0, '$here')
import media
d = '${WHIPCAST_PEER_MEDIA:-$here/.media}'
for p in media.PATTERNS:
    for k in ('H264', 'AV1'):
        media.ensure(k, d, lambda m: print(m, file=sys.stderr), p)
media.ensure('OPUS', d, lambda m: print(m, file=sys.stderr))
media.ensure('AV1-2500k', d, lambda m: print(m, file=sys.stderr))
"
