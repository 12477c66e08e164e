#!/usr/bin/env python3
"""Independent reference for the facemark landmark tests.

Runs the same two ONNX models with onnxruntime (not tract) and a numpy-only pre/post-processing
written separately from the Rust code, on the test images, and prints
tests/data/reference_landmarks.txt (one line per image and mesh index: `image index x y`,
frame pixels) plus, with --layout, the 468-point layout (ROI-normalised x y of one frontal face)
that src/mesh_layout.txt is made from.

How the committed reference was produced (2026-11, Python 3.11):
    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install onnxruntime numpy pillow
    scripts/fetch-models.sh /tmp/models      # the three ONNX files, checksummed
    /tmp/refvenv/bin/python tests/reference/reference_landmarks.py /tmp/models \
        > tests/data/reference_landmarks.txt
    /tmp/refvenv/bin/python tests/reference/reference_landmarks.py /tmp/models --layout \
        > src/mesh_layout.txt
(onnxruntime 1.31.1 from PyPI, CPU, one thread; Pillow decodes the PNGs). The iris centres (468, 473) are only
printed when iris_landmark.onnx is in MODEL_DIR.
"""
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
INDICES = [33, 133, 263, 362, 1, 61, 291, 152]


def anchors():
    out = []
    for size, per_cell in ((16, 2), (8, 6)):
        for y in range(size):
            for x in range(size):
                out += [((x + 0.5) / size, (y + 0.5) / size)] * per_cell
    return np.array(out, dtype=np.float64)


def sample(img, centre, side, angle, n):
    """Bilinear sample of an n x n square (rotated by angle) out of img (H, W, 3) float."""
    h, w, _ = img.shape
    grid = (np.arange(n) + 0.5) / n - 0.5
    gx, gy = np.meshgrid(grid * side, grid * side)
    c, s = math.cos(angle), math.sin(angle)
    px = centre[0] + gx * c - gy * s - 0.5
    py = centre[1] + gx * s + gy * c - 0.5
    x0 = np.floor(px).astype(int)
    y0 = np.floor(py).astype(int)
    fx = (px - x0)[..., None]
    fy = (py - y0)[..., None]
    pad = np.zeros((h + 4, w + 4, 3), img.dtype)
    pad[2:-2, 2:-2] = img
    def at(yy, xx):
        return pad[np.clip(yy + 2, 0, h + 3), np.clip(xx + 2, 0, w + 3)]
    return ((at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy)
            + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(det, img):
    h, w, _ = img.shape
    side = max(w, h)
    crop = sample(img, (w / 2, h / 2), side, 0.0, 128)
    x = (crop / 127.5 - 1.0).astype(np.float32).transpose(2, 0, 1)[None]
    reg, cls = det.run(["regressors", "classificators"], {"input": x})
    reg = reg[0].astype(np.float64) / 128.0
    score = 1 / (1 + np.exp(-np.clip(cls[0, :, 0].astype(np.float64), -100, 100)))
    anc = anchors()
    keep = np.where(score >= 0.5)[0]
    cands = []
    for i in keep:
        cx, cy = reg[i, 0] + anc[i, 0], reg[i, 1] + anc[i, 1]
        bw, bh = reg[i, 2], reg[i, 3]
        kps = reg[i, 4:16].reshape(6, 2) + anc[i]
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        cands.append((score[i], box, kps))
    cands.sort(key=lambda c: -c[0])
    faces = []
    while cands:
        best = cands[0]
        group = [c for c in cands if iou(best[1], c[1]) > 0.3]
        cands = [c for c in cands if iou(best[1], c[1]) <= 0.3]
        wsum = sum(c[0] for c in group)
        box = sum(c[0] * c[1] for c in group) / wsum
        kps = sum(c[0] * c[2] for c in group) / wsum
        # normalised letterbox coordinates -> frame pixels
        to_px = lambda v: (v - 0.5) * side + np.array([w / 2, h / 2])
        faces.append((best[0], to_px(box.reshape(2, 2)).reshape(4), to_px(kps)))
    return faces


def landmarks(lm, img, face):
    _, box, kps = face
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    side = 1.5 * max(box[2] - box[0], box[3] - box[1])
    angle = -math.atan2(-(kps[1][1] - kps[0][1]), kps[1][0] - kps[0][0])
    crop = sample(img, centre, side, angle, 192)
    x = (crop / 255.0).astype(np.float32).transpose(2, 0, 1)[None]
    pts, presence = lm.run(["conv2d_20", "conv2d_30"], {"input_1": x})
    pts = pts.reshape(468, 3).astype(np.float64)
    norm = pts[:, :2] / 192.0 - 0.5
    c, s = math.cos(angle), math.sin(angle)
    fx = centre[0] + side * (norm[:, 0] * c - norm[:, 1] * s)
    fy = centre[1] + side * (norm[:, 0] * s + norm[:, 1] * c)
    return np.stack([fx, fy], 1), norm, 1 / (1 + math.exp(-float(presence.reshape(-1)[0])))


def iris_centres(iris, img, pts):
    """Iris centres (mesh indices 468 and 473) from the optional iris model.

    The eye crop is centred between the corners 33 -> 133 (subject's right eye) and 362 -> 263
    (left eye, mirrored horizontally, as the model expects one orientation), turned along them
    and 2.3 x their distance wide; input RGB in [0, 1]; output_iris holds 5 x (x, y, z) crop
    pixels, the centre first.
    """
    out = {}
    for index, (a, b, mirrored) in ((468, (33, 133, False)), (473, (362, 263, True))):
        p0, p1 = pts[a], pts[b]
        centre = (p0 + p1) / 2
        side = 2.3 * float(np.hypot(*(p1 - p0)))
        angle = -math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0])
        crop = sample(img, centre, side, angle, 64)
        if mirrored:
            crop = crop[:, ::-1]
        x = (crop / 255.0).astype(np.float32).transpose(2, 0, 1)[None]
        _, ir = iris.run(["output_eyes_contours_and_brows", "output_iris"], {"input_1": x})
        u, v = ir.reshape(5, 3)[0, :2] / 64.0 - 0.5
        if mirrored:
            u = -u
        c, s = math.cos(angle), math.sin(angle)
        out[index] = (centre[0] + side * (u * c - v * s), centre[1] + side * (u * s + v * c))
    return out


def main():
    model_dir = Path(sys.argv[1])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    det = ort.InferenceSession(str(model_dir / "face_detection_short_range.onnx"), opts)
    lm = ort.InferenceSession(str(model_dir / "face_landmark.onnx"), opts)
    iris_path = model_dir / "iris_landmark.onnx"
    iris = ort.InferenceSession(str(iris_path), opts) if iris_path.exists() else None
    layout = "--layout" in sys.argv
    for name in ("astronaut.png", "grace_hopper.png"):
        img = np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float64)
        faces = detect(det, img)
        assert len(faces) == 1, (name, len(faces))
        pts, norm, presence = landmarks(lm, img, faces[0])
        if layout:
            if name == "grace_hopper.png":
                for x, y in norm:
                    print(f"{x:.4f} {y:.4f}")
            continue
        print(f"# {name}: detector score {faces[0][0]:.3f}, presence {presence:.3f}")
        for i in INDICES:
            print(f"{name} {i} {pts[i, 0]:.2f} {pts[i, 1]:.2f}")
        if iris is not None:
            for i, (x, y) in iris_centres(iris, img, pts).items():
                print(f"{name} {i} {x:.2f} {y:.2f}")


if __name__ == "__main__":
    main()
