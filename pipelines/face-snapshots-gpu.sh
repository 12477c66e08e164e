#!/usr/bin/env bash
# face-snapshots.sh with NVIDIA decoding (nvav1dec, nvh264dec, ...) where this
# machine has them; otherwise the CPU elements, and it says which ran. Same arguments as face-snapshots.sh.
GPU=1 exec "$(dirname "$0")/face-snapshots.sh" "$@"
