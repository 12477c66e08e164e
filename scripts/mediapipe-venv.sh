#!/usr/bin/env bash
# A Python venv with MediaPipe 0.10.14 (PyPI), for the facemark benchmark's side-by-side figures:
#   scripts/mediapipe-venv.sh && FACEMARK_MEDIAPIPE_PYTHON=target/mediapipe-venv/bin/python \
#     cargo bench -p gst-plugin-facemark --bench facemark
# Only the benchmark uses it; the tests do not. usage: scripts/mediapipe-venv.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-target/mediapipe-venv}
if "$VENV/bin/python" -c 'import mediapipe, PIL' 2>/dev/null; then
  echo "mediapipe-venv: $VENV ready"
  exit 0
fi
echo "mediapipe-venv: installing mediapipe==0.10.14 into $VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q mediapipe==0.10.14 pillow
echo "mediapipe-venv: $VENV ready ($("$VENV/bin/python" -c 'import mediapipe; print(mediapipe.__version__)'))"
