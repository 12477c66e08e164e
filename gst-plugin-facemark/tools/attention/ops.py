"""MediaPipe custom TFLite ops used by face_landmark_with_attention.tflite, in numpy.

Transcribed from mediapipe/util/tflite/operations/*.cc (mirror HEAD 9d88077, 2024-07-02) and the
attribute parsers in tensorflow/lite/delegates/gpu/common/mediapipe/*.cc. All three ops in the model
are version 2 (operator_code.version == 2), so only the v2 kernels are reproduced.

Matrices are the op's 4x4 row-major float32 tensors of shape [1, 4, 4]. Only rows 0 and 1 are ever
read by the consumers (x' = m00*x + m01*y + m02*0 + m03, y' = m10*x + m11*y + m12*0 + m13).
"""
import numpy as np


def landmarks_to_transform_matrix_v2(landmarks, subset_idxs, left_rotation_idx, right_rotation_idx,
                                     target_rotation_radians, output_height, output_width,
                                     scale_x, scale_y):
    """Landmarks2TransformMatrix v2.

    landmarks: [1, N, 3] (x, y, z) in the coordinate space the crop will be sampled from (here: the
    48x48 feature map, i.e. 192-px mesh * 0.25). Returns [1, 4, 4]: maps an output-crop pixel
    coordinate (u, v) of the output_width x output_height crop to an input coordinate (x, y):
      M = T(cx, cy) @ R(rot) @ S(scale_x*w/out_w, scale_y*h/out_h) @ T(-out_w/2, -out_h/2)
    where rot = atan2(y_r - y_l, x_r - x_l) - target (angle of the left->right line),
    (cx, cy), w, h = centre and size of the axis-aligned bbox of the subset points measured in the
    frame rotated by -rot (so the box is aligned with the left->right line), centre rotated back.
    subset_idxs: flat list of landmark indices; pairs (odd count -> last index duplicated), all
    points of all pairs are used, so it is simply the set of indices.
    """
    lm = np.asarray(landmarks, np.float32).reshape(-1, 3)
    l, r = lm[left_rotation_idx], lm[right_rotation_idx]
    # EstimateRotationRadians: rotation = target - atan2(dy, dx)
    rotation = np.float32(target_rotation_radians) - np.arctan2(r[1] - l[1], r[0] - l[0]).astype(np.float32)
    idx = list(subset_idxs)
    if len(idx) % 2:
        idx = idx + [idx[-1]]
    pts = lm[idx, :2]
    c, s = np.cos(rotation), np.sin(rotation)
    rot = np.array([[c, -s], [s, c]], np.float32)           # t_rotation (by +rotation)
    p = pts @ rot.T
    mn, mx = p.min(0), p.max(0)
    w, h = mx[0] - mn[0], mx[1] - mn[1]
    centre = (mn + mx) / 2
    ci, si = np.cos(-rotation), np.sin(-rotation)
    rot_inv = np.array([[ci, -si], [si, ci]], np.float32)   # t_rotation_inverse
    cx, cy = rot_inv @ centre

    def T(tx, ty):
        m = np.eye(4, dtype=np.float32); m[0, 3] = tx; m[1, 3] = ty; return m
    rr = -rotation
    R = np.eye(4, dtype=np.float32)
    R[0, 0], R[0, 1], R[1, 0], R[1, 1] = np.cos(rr), -np.sin(rr), np.sin(rr), np.cos(rr)
    S = np.eye(4, dtype=np.float32)
    S[0, 0] = scale_x * w / output_width
    S[1, 1] = scale_y * h / output_height
    M = T(cx, cy) @ R @ S @ T(-output_width / 2.0, -output_height / 2.0)
    return M.astype(np.float32).reshape(1, 4, 4)


def transform_tensor_bilinear_v2(data, matrix, output_height, output_width):
    """TransformTensorBilinear v2 (align_corners=True in the GPU attrs; CPU kernel below).

    data: [1, H, W, C] NHWC; matrix: [1, 4, 4]. For every output pixel (ox, oy):
      x = m00*(ox+0.5) + m01*(oy+0.5) + m03 - 0.5,  y = m10*(ox+0.5) + m11*(oy+0.5) + m13 - 0.5
    (v2 adds m00*0.5 + m01*0.5 - 0.5 to m03, same for row 1: pixel-centre convention)
    If x < 0 or x > W-1 or y < 0 or y > H-1 the whole output pixel (all channels) is 0.
    Otherwise plain bilinear interpolation between floor/floor+1 neighbours (a neighbour outside
    the map reads 0, which only matters at x == W-1 exactly, with weight 0).
    """
    d = np.asarray(data, np.float32)[0]
    H, W, C = d.shape
    m = np.asarray(matrix, np.float32).reshape(4, 4)
    xt = m[0].copy(); yt = m[1].copy()
    xt[3] += xt[0] * 0.5 + xt[1] * 0.5 - 0.5
    yt[3] += yt[0] * 0.5 + yt[1] * 0.5 - 0.5
    oy, ox = np.meshgrid(np.arange(output_height, dtype=np.float32),
                         np.arange(output_width, dtype=np.float32), indexing="ij")
    tx = xt[0] * ox + xt[1] * oy + xt[3]
    ty = yt[0] * ox + yt[1] * oy + yt[3]
    oob = (tx < 0) | (tx > W - 1) | (ty < 0) | (ty > H - 1)
    fx, fy = np.floor(tx), np.floor(ty)
    rx, ry = (tx - fx)[..., None], (ty - fy)[..., None]
    pad = np.zeros((H + 1, W + 1, C), np.float32); pad[:H, :W] = d   # reads beyond edge -> 0
    fxi = np.clip(fx, 0, W - 1).astype(int); fyi = np.clip(fy, 0, H - 1).astype(int)
    q11 = pad[fyi, fxi]; q21 = pad[fyi, fxi + 1]; q12 = pad[fyi + 1, fxi]; q22 = pad[fyi + 1, fxi + 1]
    upper = (1 - rx) * q11 + rx * q21
    lower = (1 - rx) * q12 + rx * q22
    out = ry * lower + (1 - ry) * upper
    out[oob] = 0
    return out[None].astype(np.float32)


def transform_landmarks_v2(landmarks, matrix):
    """TransformLandmarks v2: landmarks [1, N, D] with D = last dim (2 here; 3 keeps z unchanged).
    x' = m00*x + m01*y + m03, y' = m10*x + m11*y + m13 (z input is taken as 0, w as 1)."""
    lm = np.asarray(landmarks, np.float32)
    m = np.asarray(matrix, np.float32).reshape(4, 4)
    out = lm.copy()
    x, y = lm[..., 0], lm[..., 1]
    out[..., 0] = m[0, 0] * x + m[0, 1] * y + m[0, 3]
    out[..., 1] = m[1, 0] * x + m[1, 1] * y + m[1, 3]
    return out


def refine_478(mesh, lips, left_eye, right_eye, left_iris, right_iris, lips_idx, left_eye_idx,
               right_eye_idx):
    """LandmarksRefinementCalculator as configured in tensors_to_face_landmarks_with_attention.pbtxt.
    mesh [468,3]; lips [80,2]; eyes [71,2]; irises [5,2] (all in 192-px crop space).
    Returns [478,3]: mesh xyz copied; lips/eye x,y overwrite mesh points at the subset indices
    (z kept from mesh); iris points 468..472 (left_iris) and 473..477 (right_iris) get x,y from the
    iris heads and z = mean z of 16 eye-contour mesh points (first 16 entries of the eye subset)."""
    out = np.zeros((478, 3), np.float32)
    out[:468] = mesh
    out[lips_idx, :2] = lips
    out[left_eye_idx, :2] = left_eye
    out[right_eye_idx, :2] = right_eye
    out[468:473, :2] = left_iris
    out[468:473, 2] = out[left_eye_idx[:16], 2].mean()
    out[473:478, :2] = right_iris
    out[473:478, 2] = out[right_eye_idx[:16], 2].mean()
    return out
