"""numpy run of face_landmark_with_attention.tflite (tflite_numpy.py + ops.py) on crop192.png vs
(a) MediaPipe's interpreter on the same crop (crop space, 192-px units) and
(b) MediaPipe FaceMesh refine_landmarks=True on the full image (after projecting back with the ROI)."""
import numpy as np, time
from tflite_numpy import Model
import ops
fm = np.load('mp_facemesh.npz')
crop = fm['crop'].astype(np.float32) / 255.0
mdl = Model('face_landmark_with_attention.tflite')
t = time.time(); out = mdl.run(crop[None]); print('numpy run %.2fs' % (time.time() - t))
mesh = out['output_mesh_identity'].reshape(468, 3)
heads = dict(lips=out['output_lips'].reshape(80, 2), left_eye=out['output_left_eye'].reshape(71, 2),
             right_eye=out['output_right_eye'].reshape(71, 2), left_iris=out['output_left_iris'].reshape(5, 2),
             right_iris=out['output_right_iris'].reshape(5, 2))
print('faceflag logit', out['conv_faceflag'].ravel()[0], 'sigmoid', 1 / (1 + np.exp(-out['conv_faceflag'].ravel()[0])))
for dele in ('xnnpack', 'tflite'):
    ref = np.load(f'mp_interp_face_landmark_with_attention_{dele}.npz')
    print(f'--- vs MediaPipe InferenceCalculator ({dele} delegate), crop space, 192-px units')
    print('  mesh     max|d| xy %.2e  z %.2e' % (np.abs(ref['mesh'][:, :2] - mesh[:, :2]).max(), np.abs(ref['mesh'][:, 2] - mesh[:, 2]).max()))
    for k, v in heads.items():
        print('  %-9s max|d| xy %.2e' % (k, np.abs(ref[k][:, :2] - v).max()))
    print('  flag: mp %.6f' % float(ref['flag']))
# 478 assembly (LandmarksRefinementCalculator), then normalize + project (LandmarkProjectionCalculator)
cfg = {}
from decode_subsets import SUBSETS
L = ops.refine_478(mesh, heads['lips'], heads['left_eye'], heads['right_eye'], heads['left_iris'], heads['right_iris'],
                   SUBSETS['lips'], SUBSETS['left_eye'], SUBSETS['right_eye'])
np.save('numpy_478_crop.npy', L)
n = L / 192.0                               # TensorsToLandmarks: x/192, y/192, z/192
cx, cy, w, h, rot = fm['roi']; W = H = 512
x, y = n[:, 0] - 0.5, n[:, 1] - 0.5
nx = np.cos(rot) * x - np.sin(rot) * y; ny = np.sin(rot) * x + np.cos(rot) * y
proj = np.stack([nx * (w / W) + cx / W, ny * (h / H) + cy / H, n[:, 2] * (w / W)], 1)
ref = fm['landmarks']
d = np.abs(proj - ref)
print('--- vs FaceMesh(refine_landmarks=True, static_image_mode=True), 478 points, normalized image coords')
print('  max|d| x,y,z =', d.max(0), ' in pixels (512 px image): xy max %.4f px, mean %.4f px' % (d[:, :2].max() * 512, d[:, :2].mean() * 512))
print('  points 468..477 (iris) max xy %.4f px' % (d[468:, :2].max() * 512))
