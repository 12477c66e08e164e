"""Reference pipeline for the engine: trunk ONNX -> (numpy custom ops) -> 3 head ONNX -> numpy
TransformLandmarks -> 478 points. Compared with MediaPipe's interpreter (crop space) and FaceMesh.
The 4 ONNX files are those scripts/attention_to_onnx.py writes (and fetch-models.sh installs), read
from $FACEMARK_MODEL_DIR if set, else the current directory."""
import numpy as np, onnxruntime as ort, os, time
import ops
from decode_subsets import SUBSETS
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
DIR = os.environ.get('FACEMARK_MODEL_DIR', '.')
FILES = {'trunk': 'face_landmark_with_attention', 'head_lips': 'face_landmark_with_attention_lips',
         'head_left_eye': 'face_landmark_with_attention_left_eye',
         'head_right_eye': 'face_landmark_with_attention_right_eye'}
S = {k: ort.InferenceSession(os.path.join(DIR, f + '.onnx'), so, providers=['CPUExecutionProvider'])
     for k, f in FILES.items()}
# Landmarks2TransformMatrix attributes (custom_options of ops 192/193/194)
L2TM = dict(target_rotation_radians=0.0, output_height=16, output_width=16, scale_x=1.5, scale_y=1.5)
ROT = dict(lips=(61, 291), left_eye=(33, 133), right_eye=(362, 263))
SCALE_T = np.array([[1, 1, 4, 4], [1, 1, 4, 4], [.25, .25, 1, 1], [.25, .25, 1, 1]], np.float32)  # multiply_by_constant_1/3/5

def run(crop_nhwc01):
    x = crop_nhwc01.transpose(0, 3, 1, 2).astype(np.float32)
    mesh, flag, feat = S['trunk'].run(['output_mesh', 'conv_faceflag', 'p_re_lu_3'], {'input_1': x})
    mesh = mesh.reshape(468, 3)
    feat_nhwc = feat.transpose(0, 2, 3, 1)
    lm48 = mesh[None] * np.float32(0.25)                       # MUL multiply_by_constant (x0.25): 192-px -> 48x48 map
    res = {}
    for part, sess, inp, outs in [('lips', 'head_lips', 'lips_crop', ['conv_lips']),
                                  ('left_eye', 'head_left_eye', 'left_eye_crop', ['conv_left_eye', 'conv_left_iris']),
                                  ('right_eye', 'head_right_eye', 'right_eye_crop', ['conv_right_eye', 'conv_right_iris'])]:
        l, r = ROT[part]
        M = ops.landmarks_to_transform_matrix_v2(lm48, SUBSETS[part], l, r, **L2TM)
        crop = ops.transform_tensor_bilinear_v2(feat_nhwc, M, 16, 16)
        raw = S[sess].run(outs, {inp: crop.transpose(0, 3, 1, 2)})
        M4 = M * SCALE_T
        for name, v in zip(outs, raw):
            res[name[5:]] = ops.transform_landmarks_v2(v.reshape(1, -1, 2), M4)[0]
    return mesh, float(flag.ravel()[0]), res

if __name__ == '__main__':
    fm = np.load('mp_facemesh.npz')
    crop = fm['crop'][None].astype(np.float32) / 255.0
    mesh, flag, res = run(crop)
    print('flag logit', flag)
    for dele in ('xnnpack', 'tflite'):
        ref = np.load(f'mp_interp_face_landmark_with_attention_{dele}.npz')
        d = {'mesh': np.abs(ref['mesh'] - mesh).max()}
        d.update({k: np.abs(ref[k][:, :2] - v).max() for k, v in res.items()})
        print(f'vs MediaPipe interpreter ({dele}), 192-px crop units:', {k: float('%.2e' % v) for k, v in d.items()})
    L = ops.refine_478(mesh, res['lips'], res['left_eye'], res['right_eye'], res['left_iris'], res['right_iris'],
                       SUBSETS['lips'], SUBSETS['left_eye'], SUBSETS['right_eye'])
    n = L / 192.0
    cx, cy, w, h, rot = fm['roi']; W = H = 512
    x, y = n[:, 0] - 0.5, n[:, 1] - 0.5
    proj = np.stack([(np.cos(rot) * x - np.sin(rot) * y) * w / W + cx / W,
                     (np.sin(rot) * x + np.cos(rot) * y) * h / H + cy / H, n[:, 2] * w / W], 1)
    d = np.abs(proj - fm['landmarks'])
    print('478 vs FaceMesh: max |dx,dy| %.4f px (512-px image), mean %.4f px; max |dz| %.2e (normalized)'
          % (d[:, :2].max() * 512, d[:, :2].mean() * 512, d[:, 2].max()))
    old = np.load('numpy_478_crop.npy')
    print('ONNX pipeline vs pure numpy interpreter (478, crop px): %.2e' % np.abs(old - L).max())
    # timing, 1 thread
    for k in S:
        pass
    t = time.perf_counter(); N = 30
    for _ in range(N): run(crop)
    print('full pipeline (onnxruntime 1 thread + numpy custom ops): %.2f ms/frame' % ((time.perf_counter() - t) / N * 1e3))
    for k, inp, shp in [('trunk', 'input_1', (1, 3, 192, 192)), ('head_lips', 'lips_crop', (1, 32, 16, 16)), ('head_left_eye', 'left_eye_crop', (1, 32, 16, 16))]:
        z = np.random.rand(*shp).astype(np.float32); t = time.perf_counter()
        for _ in range(N): S[k].run(None, {inp: z})
        print('  %s: %.2f ms' % (k, (time.perf_counter() - t) / N * 1e3))
    fm_sess = ort.InferenceSession(os.path.expanduser('~/.local/share/whipcast/models/face_landmark.onnx'), so, providers=['CPUExecutionProvider'])
    z = np.random.rand(1, 3, 192, 192).astype(np.float32); t = time.perf_counter()
    for _ in range(N): fm_sess.run(None, {'input_1': z})
    print('  installed face_landmark.onnx (468-pt, for scale): %.2f ms' % ((time.perf_counter() - t) / N * 1e3))
    np.save('onnx_478_crop.npy', L)
