"""Index lists used by the LandmarksRefinementCalculator (identical to the subset_idxs stored in the
Landmarks2TransformMatrix custom options of the model)."""
import tflite
from flatbuffers import flexbuffers
def _load(path='face_landmark_with_attention.tflite'):
    m = tflite.Model.GetRootAsModel(open(path, 'rb').read(), 0); g = m.Subgraphs(0); res = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k); oc = m.OperatorCodes(op.OpcodeIndex())
        if oc.CustomCode() == b'Landmarks2TransformMatrix':
            res.append(flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())['subset_idxs'])
    return dict(zip(['lips', 'left_eye', 'right_eye'], res))
SUBSETS = _load()
