#!/usr/bin/env python3
"""Independent reference for the facemark landmark tests.

Runs the same ONNX models with onnxruntime (not tract) and a numpy-only pre/post-processing
written separately from the Rust code, on the test images, and prints
tests/data/reference_landmarks.txt (one line per image and mesh index: `image index x y`,
frame pixels) plus, with --layout, the 468-point layout (ROI-normalised x y of one frontal face)
that src/mesh_layout.txt is made from.

With --attention it runs MediaPipe's 478-point model instead of face_landmark + iris_landmark:
the same detector, ROI and 192x192 crop, then the 4 ONNX parts of face_landmark_with_attention
(trunk, lips head, left-eye head, right-eye head) joined by MediaPipe's 3 custom ops written here
in numpy (Landmarks2TransformMatrix v2, TransformTensorBilinear v2, TransformLandmarks v2 with the
graph's x4 translation; see tools/attention/README.md section 2), the 478-point assembly of
MediaPipe's LandmarksRefinementCalculator, and the same mapping back to the frame. It prints
tests/data/reference_attention_landmarks.txt (same line format). Checked against MediaPipe 0.10.14
FaceMesh(refine_landmarks=True, static_image_mode=True), 2026-12: given MediaPipe's own ROI and
crop (OpenCV warpPerspective), this pipeline's 478 points are within 0.032 px (astronaut) and
0.047 px (grace_hopper) of FaceMesh's; with this script's detector ROI and crop, the printed
points are within 0.91 px and 2.46 px (mean 0.32 and 1.12 px): the ROIs differ (e.g. the
astronaut's angle 0.178 rad here, 0.094 in MediaPipe).

How the committed references were produced (Python 3.11):
    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install onnxruntime numpy pillow
    scripts/fetch-models.sh /tmp/models      # the ONNX files, checksummed
    /tmp/refvenv/bin/python tests/reference/reference_landmarks.py /tmp/models \
        > tests/data/reference_landmarks.txt
    /tmp/refvenv/bin/python tests/reference/reference_landmarks.py /tmp/models --layout \
        > src/mesh_layout.txt
    /tmp/refvenv/bin/python tests/reference/reference_landmarks.py /tmp/models --attention \
        > tests/data/reference_attention_landmarks.txt
(onnxruntime from PyPI, CPU, one thread: 1.31.1 for the first two, 2026-11; 1.32.0 for
--attention, 2026-12, which reproduces the first file exactly; Pillow decodes the PNGs). The iris
centres (468, 473) of the first file are only printed when iris_landmark.onnx is in MODEL_DIR.
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
# --attention also prints the inner lips, the upper/lower eyelids and the 10 iris points
ATTENTION_INDICES = INDICES + [13, 14, 159, 145, 386, 374] + list(range(468, 478))

# The index lists of MediaPipe's LandmarksRefinementCalculator, from
# mediapipe/modules/face_landmark/tensors_to_face_landmarks_with_attention.pbtxt (they are also
# the subset_idxs of the model's Landmarks2TransformMatrix ops, in the same order).
LIPS = [
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291,  # lower outer
    185, 40, 39, 37, 0, 267, 269, 270, 409,  # upper outer (excluding corners)
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,  # lower inner
    191, 80, 81, 82, 13, 312, 311, 310, 415,  # upper inner (excluding corners)
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306,  # lower semi-outer
    184, 74, 73, 72, 11, 302, 303, 304, 408,  # upper semi-outer (excluding corners)
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292,  # lower semi-inner
    183, 42, 41, 38, 12, 268, 271, 272, 407,  # upper semi-inner (excluding corners)
]
LEFT_EYE = [  # the eye on the image's left (the subject's right eye)
    33, 7, 163, 144, 145, 153, 154, 155, 133,  # lower contour
    246, 161, 160, 159, 158, 157, 173,  # upper contour (excluding corners)
    130, 25, 110, 24, 23, 22, 26, 112, 243,  # halo x2 lower contour
    247, 30, 29, 27, 28, 56, 190,  # halo x2 upper contour (excluding corners)
    226, 31, 228, 229, 230, 231, 232, 233, 244,  # halo x3 lower contour
    113, 225, 224, 223, 222, 221, 189,  # halo x3 upper contour (excluding corners)
    35, 124, 46, 53, 52, 65,  # halo x4 upper contour or eyebrow inner contour
    143, 111, 117, 118, 119, 120, 121, 128, 245,  # halo x5 lower contour
    156, 70, 63, 105, 66, 107, 55, 193,  # halo x5 upper contour or eyebrow outer contour
]
RIGHT_EYE = [
    263, 249, 390, 373, 374, 380, 381, 382, 362,
    466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463,
    467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464,
    342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295,
    372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
]
# the heads: ONNX file suffix, index list, the two points that set the crop's rotation
# (left_rotation_idx, right_rotation_idx of Landmarks2TransformMatrix), ONNX outputs
HEADS = (
    ("lips", LIPS, (61, 291), ["conv_lips"]),
    ("left_eye", LEFT_EYE, (33, 133), ["conv_left_eye", "conv_left_iris"]),
    ("right_eye", RIGHT_EYE, (362, 263), ["conv_right_eye", "conv_right_iris"]),
)


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


def face_roi(face):
    """The landmark model's square ROI in frame pixels: centre, side, angle."""
    _, box, kps = face
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    side = 1.5 * max(box[2] - box[0], box[3] - box[1])
    angle = -math.atan2(-(kps[1][1] - kps[0][1]), kps[1][0] - kps[0][0])
    return centre, side, angle


def to_frame(pts, roi):
    """Points in 192x192 crop pixels -> (frame pixels, ROI-normalised coordinates)."""
    centre, side, angle = roi
    norm = pts[:, :2] / 192.0 - 0.5
    c, s = math.cos(angle), math.sin(angle)
    fx = centre[0] + side * (norm[:, 0] * c - norm[:, 1] * s)
    fy = centre[1] + side * (norm[:, 0] * s + norm[:, 1] * c)
    return np.stack([fx, fy], 1), norm


def landmarks(lm, img, face):
    roi = face_roi(face)
    crop = sample(img, *roi, 192)
    x = (crop / 255.0).astype(np.float32).transpose(2, 0, 1)[None]
    pts, presence = lm.run(["conv2d_20", "conv2d_30"], {"input_1": x})
    pts = pts.reshape(468, 3).astype(np.float64)
    frame, norm = to_frame(pts, roi)
    return frame, norm, 1 / (1 + math.exp(-float(presence.reshape(-1)[0])))


def head_transform(lm48, subset, left, right):
    """Landmarks2TransformMatrix v2 as the model uses it (16x16 output, scale 1.5, target rotation
    0): the 2x3 affine map from head-crop pixel coordinates (0..16) to feature-map coordinates
    (0..48). The crop is turned so that the left->right line is horizontal and covers 1.5 x the
    bounding box of the subset points measured in that turned frame."""
    l, r = lm48[left], lm48[right]
    rot = -math.atan2(r[1] - l[1], r[0] - l[0])
    c, s = math.cos(rot), math.sin(rot)
    p = lm48[subset, :2]
    u = p[:, 0] * c - p[:, 1] * s  # the points turned by rot
    v = p[:, 0] * s + p[:, 1] * c
    mid_u, mid_v = (u.max() + u.min()) / 2, (v.max() + v.min()) / 2
    turn_back = np.array([[c, s], [-s, c]])  # rotation by -rot
    linear = turn_back @ np.diag([1.5 * (u.max() - u.min()) / 16, 1.5 * (v.max() - v.min()) / 16])
    centre = turn_back @ [mid_u, mid_v]
    return np.hstack([linear, (centre - linear @ [8.0, 8.0])[:, None]])


def sample_features(feat, affine, n=16):
    """TransformTensorBilinear v2: an n x n crop of feat [C, H, W] through affine (crop pixel ->
    map coordinates), sampled at pixel centres. An output pixel whose sample point lies outside
    [0, W-1] x [0, H-1] is 0 in every channel (no clamping)."""
    ch, h, w = feat.shape
    oy, ox = np.mgrid[0:n, 0:n] + 0.5
    x = affine[0, 0] * ox + affine[0, 1] * oy + affine[0, 2] - 0.5
    y = affine[1, 0] * ox + affine[1, 1] * oy + affine[1, 2] - 0.5
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x0 = np.clip(np.floor(x), 0, w - 1).astype(int)
    y0 = np.clip(np.floor(y), 0, h - 1).astype(int)
    fx, fy = x - x0, y - y0
    pad = np.zeros((ch, h + 1, w + 1))  # a neighbour past the last row/column reads 0 (weight 0)
    pad[:, :h, :w] = feat
    out = ((pad[:, y0, x0] * (1 - fx) + pad[:, y0, x0 + 1] * fx) * (1 - fy)
           + (pad[:, y0 + 1, x0] * (1 - fx) + pad[:, y0 + 1, x0 + 1] * fx) * fy)
    return np.where(inside, out, 0.0)


def attention_landmarks(trunk, heads, img, face):
    """The 478 points of face_landmark_with_attention in frame pixels, and the presence."""
    roi = face_roi(face)
    crop = sample(img, *roi, 192)
    x = (crop / 255.0).astype(np.float32).transpose(2, 0, 1)[None]
    mesh, flag, feat = trunk.run(["output_mesh", "conv_faceflag", "p_re_lu_3"], {"input_1": x})
    mesh = mesh.reshape(468, 3).astype(np.float64)  # 192-px crop pixels
    feat = feat[0].astype(np.float64)  # [32, 48, 48]
    lm48 = mesh * 0.25  # the feature map's units
    pts = np.zeros((478, 3))
    pts[:468] = mesh
    for (part, subset, (left, right), outputs), sess in zip(HEADS, heads):
        affine = head_transform(lm48, subset, left, right)
        head_in = sample_features(feat, affine)[None].astype(np.float32)
        raw = sess.run(outputs, {sess.get_inputs()[0].name: head_in})
        # TransformLandmarks v2 with the matrix's translation x4: the heads' points are in 64-unit
        # (16 x 4) crop space, the result in 192-px crop pixels
        linear, shift = affine[:, :2], 4.0 * affine[:, 2]
        contour, *iris = [r.reshape(-1, 2).astype(np.float64) @ linear.T + shift for r in raw]
        pts[subset, :2] = contour  # z stays the mesh's
        if iris:
            first = 468 if part == "left_eye" else 473
            pts[first:first + 5, :2] = iris[0]
            pts[first:first + 5, 2] = pts[subset[:16], 2].mean()  # lower + upper eye contour
    frame, _ = to_frame(pts, roi)
    return frame, 1 / (1 + math.exp(-float(flag.reshape(-1)[0])))


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


def main_attention(model_dir, opts, det):
    trunk = ort.InferenceSession(str(model_dir / "face_landmark_with_attention.onnx"), opts)
    heads = [ort.InferenceSession(str(model_dir / f"face_landmark_with_attention_{part}.onnx"), opts)
             for part, *_ in HEADS]
    print("# made by tests/reference/reference_landmarks.py MODEL_DIR --attention (models from"
          f" scripts/fetch-models.sh, onnxruntime {ort.__version__}): face_detection_short_range,")
    print("# then face_landmark_with_attention's 4 ONNX parts with its custom ops and the 478-point"
          " assembly in numpy; lines: image index x y (frame pixels)")
    for name in ("astronaut.png", "grace_hopper.png"):
        img = np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float64)
        faces = detect(det, img)
        assert len(faces) == 1, (name, len(faces))
        pts, presence = attention_landmarks(trunk, heads, img, faces[0])
        print(f"# {name}: detector score {faces[0][0]:.3f}, presence {presence:.3f}")
        for i in ATTENTION_INDICES:
            print(f"{name} {i} {pts[i, 0]:.2f} {pts[i, 1]:.2f}")


def main():
    model_dir = Path(sys.argv[1])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    det = ort.InferenceSession(str(model_dir / "face_detection_short_range.onnx"), opts)
    if "--attention" in sys.argv:
        return main_attention(model_dir, opts, det)
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
