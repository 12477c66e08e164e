"""Run face_landmark_with_attention.tflite through MediaPipe's own InferenceCalculator (with
TfLiteCustomOpResolverCalculator, i.e. MediaPipe's registered custom ops) on crop192.png, with no ROI
(full 192x192 image -> identity resample). Raw outputs via TensorsToLandmarksCalculator LANDMARKS."""
import sys, os, numpy as np, cv2, mediapipe as mp
from mediapipe.python._framework_bindings import resource_util
site = os.path.dirname(os.path.dirname(mp.__file__))
resource_util.set_resource_dir(site)
delegate = sys.argv[1] if len(sys.argv) > 1 else 'xnnpack'
model = sys.argv[2] if len(sys.argv) > 2 else 'face_landmark_with_attention'
heads = [('mesh', 468), ('lips', 80), ('left_eye', 71), ('right_eye', 71), ('left_iris', 5), ('right_iris', 5)] if model.endswith('attention') else [('mesh', 468)]
nout = len(heads) + 1
split = ''.join(f'ranges {{ begin: {i} end: {i+1} }} ' for i in range(nout))
cfg = f'''
input_stream: "image"
node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:input_tensors"
  options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{ output_tensor_width: 192 output_tensor_height: 192
    output_tensor_float_range {{ min: 0.0 max: 1.0 }} }} }} }}
node {{ calculator: "TfLiteCustomOpResolverCalculator" output_side_packet: "OP_RESOLVER:op_resolver" }}
node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:input_tensors" input_side_packet: "OP_RESOLVER:op_resolver"
  output_stream: "TENSORS:output_tensors"
  options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "mediapipe/modules/face_landmark/{model}.tflite" delegate {{ {delegate} {{ {'num_threads: 1' if delegate=='xnnpack' else ''} }} }} }} }} }}
node {{ calculator: "SplitTensorVectorCalculator" input_stream: "output_tensors"
  {''.join(f'output_stream: "t{i}" ' for i in range(nout))}
  options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{ {split} }} }} }}
''' + ''.join(f'''
node {{ calculator: "TensorsToLandmarksCalculator" input_stream: "TENSORS:t{i}" output_stream: "LANDMARKS:{n}"
  options {{ [mediapipe.TensorsToLandmarksCalculatorOptions.ext] {{ num_landmarks: {k} }} }} }}
output_stream: "{n}"''' for i, (n, k) in enumerate(heads)) + f'''
node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:t{nout-1}" output_stream: "FLOAT:flag" }}
output_stream: "flag"
'''
g = mp.CalculatorGraph(graph_config=cfg)
got = {}
for n, _ in heads:
    g.observe_output_stream(n, lambda s, p: got.__setitem__(s, np.array([[l.x, l.y, l.z] for l in mp.packet_getter.get_proto(p).landmark], np.float32)))
g.observe_output_stream('flag', lambda s, p: got.__setitem__(s, mp.packet_getter.get_float(p)))
crop = cv2.cvtColor(cv2.imread('crop192.png'), cv2.COLOR_BGR2RGB)
g.start_run()
g.add_packet_to_input_stream('image', mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=crop).at(0))
import time
N = int(os.environ.get('LOOP', '0'))
if N:
    t = time.perf_counter()
    for i in range(1, N + 1):
        g.add_packet_to_input_stream('image', mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=crop).at(i))
        g.wait_until_idle()
    print(f'TIMING {model} {delegate}: {(time.perf_counter()-t)/N*1e3:.2f} ms/frame over {N} frames (graph incl. ImageToTensor + decode)')
g.close()
for k, v in got.items(): print(k, np.shape(v))
np.savez(f'mp_interp_{model}_{delegate}.npz', **got)
