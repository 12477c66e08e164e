#!/usr/bin/env bash
# face-to-mp4.sh with NVIDIA decoding (nvav1dec, nvh264dec, ...) and encoding (nvh264enc) where this
# machine has them; otherwise the CPU elements, and it says which ran. Same arguments as face-to-mp4.sh.
GPU=1 exec "$(dirname "$0")/face-to-mp4.sh" "$@"
