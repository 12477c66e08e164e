#!/usr/bin/env python3
"""MediaPipe's own runtime on the frames facemark's benchmark uses, for a side-by-side figure.

Called by `cargo bench -p gst-plugin-facemark --bench facemark` (benches/facemark.rs) when
FACEMARK_MEDIAPIPE_PYTHON names a Python with mediapipe 0.10.14 (scripts/mediapipe-venv.sh
makes one): it inherits the benchmark's CPU affinity (one core).

usage: mediapipe_facemesh.py IMAGE.png FRAMES {detect|track} {468|478}
  detect: static_image_mode=True, detection + mesh on every frame
  track:  static_image_mode=False, the mesh placed from the last frame's landmarks (the
          detector runs only when the face is lost)
  468: the face mesh alone; 478: refine_landmarks=True, with the 10 iris points
Prints one JSON line: median and mean ms per frame of face_mesh.process() (wall, and the
process's CPU time), the faces found in the last frame.
"""
import json
import statistics
import sys
import time

import mediapipe as mp
import numpy as np
from PIL import Image


def main():
    path, frames, mode, points = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rgb = np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))
    # The legacy FaceMesh solution with its bundled models, one face, MediaPipe's default
    # confidences: the job facemark does with irises=false (468) or irises=true (478).
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=(mode == "detect"),
        max_num_faces=1,
        refine_landmarks=(points == "478"),
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    ) as mesh:
        wall, cpu = [], []
        faces = 0
        for k in range(frames + 10):
            c0, t0 = time.process_time(), time.perf_counter()
            result = mesh.process(rgb)
            t1, c1 = time.perf_counter(), time.process_time()
            found = result.multi_face_landmarks or []
            faces = len(found)
            landmarks = len(found[0].landmark) if found else 0
            if k >= 10:
                wall.append((t1 - t0) * 1e3)
                cpu.append((c1 - c0) * 1e3)
    print(
        json.dumps(
            {
                "median_ms": statistics.median(wall),
                "mean_ms": statistics.fmean(wall),
                "cpu_median_ms": statistics.median(cpu),
                "faces": faces,
                "landmarks": landmarks,
            }
        )
    )


if __name__ == "__main__":
    main()
