"""Is the crop-space match discriminative? Re-run the ONNX pipeline with deliberately wrong custom-op
variants and show how far the head outputs move (192-px crop units) vs MediaPipe (tflite kernels)."""
import numpy as np, ops, run_onnx_pipeline as P
fm = np.load('mp_facemesh.npz'); crop = fm['crop'][None].astype(np.float32) / 255.0
ref = np.load('mp_interp_face_landmark_with_attention_tflite.npz')
def score(tag):
    mesh, flag, res = P.run(crop)
    print('%-45s' % tag, {k: float('%.2e' % np.abs(ref[k][:, :2] - v).max()) for k, v in res.items()})
score('correct (v2 ops)')
good = ops.transform_tensor_bilinear_v2
def v1_like(d, M, h, w):   # v1 kernel: no half-pixel-centre adjustment
    M = M.copy(); M[0, 0, 3] -= M[0, 0, 0] * .5 + M[0, 0, 1] * .5 - .5; M[0, 1, 3] -= M[0, 1, 0] * .5 + M[0, 1, 1] * .5 - .5
    return good(d, M, h, w)
ops.transform_tensor_bilinear_v2 = v1_like; score('bilinear without v2 half-pixel shift')
ops.transform_tensor_bilinear_v2 = good
P.L2TM['scale_x'] = P.L2TM['scale_y'] = 1.4; score('scale 1.4 instead of 1.5')
P.L2TM['scale_x'] = P.L2TM['scale_y'] = 1.5
P.SCALE_T[:] = 1; score('no x4 translation scaling before TransformLandmarks')
