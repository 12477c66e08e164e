"""Run MediaPipe FaceMesh (refine_landmarks=True, static_image_mode) on astronaut.png; save its 478
landmarks (normalized image coords) + the ROI rect it used (face_rects_from_detections) + the 192x192
crop reconstructed the way ImageToTensorCalculator (OpenCV path) builds it."""
import numpy as np, cv2, mediapipe as mp, os, json
from mediapipe.python.solution_base import SolutionBase
from mediapipe.python.solutions import face_mesh
img = cv2.cvtColor(cv2.imread(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../tests/data/astronaut.png')), cv2.COLOR_BGR2RGB)
H, W = img.shape[:2]
sb = SolutionBase(binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
                  side_inputs={'num_faces': 1, 'with_attention': True, 'use_prev_landmarks': False},
                  calculator_params={'facedetectionshortrangecpu__facedetectionshortrange__facedetection__TensorsToDetectionsCalculator.min_score_thresh': 0.5,
                                     'facelandmarkcpu__ThresholdingCalculator.threshold': 0.5},
                  outputs=['multi_face_landmarks', 'face_rects_from_detections'])
res = sb.process({'image': img})
lms = np.array([[p.x, p.y, p.z] for p in res.multi_face_landmarks[0].landmark], np.float32)
r = res.face_rects_from_detections[0]
print('landmarks', lms.shape, 'roi', r)
roi = dict(x_center=r.x_center, y_center=r.y_center, width=r.width, height=r.height, rotation=r.rotation)
# ImageToTensorCalculator (OpenCV converter): boxPoints of the rotated rect -> dst corners,
# getPerspectiveTransform + warpPerspective(INTER_LINEAR, BORDER_REPLICATE), /255 -> [0,1].
cx, cy, w, h = r.x_center * W, r.y_center * H, r.width * W, r.height * H
rr = cv2.RotatedRect((cx, cy), (w, h), r.rotation * 180 / np.pi)
src = cv2.boxPoints(rr).astype(np.float32)
dst = np.array([[0, 192], [0, 0], [192, 0], [192, 192]], np.float32)
P = cv2.getPerspectiveTransform(src, dst)
crop = cv2.warpPerspective(img, P, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
cv2.imwrite('crop192.png', cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
np.savez('mp_facemesh.npz', landmarks=lms, crop=crop, P=P, roi=np.array([cx, cy, w, h, r.rotation], np.float64))
print('crop saved; P=', P)
