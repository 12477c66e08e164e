#!/usr/bin/env python3
"""Convert MediaPipe's face_landmark_with_attention.tflite into 4 plain ONNX files.

The model has 3 MediaPipe custom ops (Landmarks2TransformMatrix, TransformTensorBilinear,
TransformLandmarks) between a trunk and 3 heads, so tflite2onnx cannot convert it. The custom ops
run outside ONNX (in the facemark element; their math is in
gst-plugin-facemark/tools/attention/README.md); this script writes the standard-op parts:

  face_landmark_with_attention.onnx            input_1 [1,3,192,192] (RGB in [0,1])
      -> output_mesh [1,1404,1,1] (468 x (x,y,z), 192-px crop pixels), conv_faceflag [1,1,1,1]
         (presence logit), p_re_lu_3 [1,32,48,48] (the feature map the heads' crops come from)
  face_landmark_with_attention_lips.onnx       lips_crop [1,32,16,16] -> conv_lips [1,160,1,1]
  face_landmark_with_attention_left_eye.onnx   left_eye_crop [1,32,16,16]
      -> conv_left_eye [1,142,1,1], conv_left_iris [1,10,1,1]
  face_landmark_with_attention_right_eye.onnx  right_eye_crop [1,32,16,16]
      -> conv_right_eye [1,142,1,1], conv_right_iris [1,10,1,1]

Same style as tflite2onnx 0.4.1's face_landmark.onnx (what the facemark engine lowers): opset 11,
NCHW, Conv (group=C for depthwise) with explicit pads, PRelu with slope [1,C,1,1], Add, MaxPool
(auto_pad VALID), Pad (pads input; only channels are padded), fp32 initializers (the fp16 weights
dequantized), tensor names kept from the tflite graph. The output is deterministic; fetch-models.sh
still passes it through canonicalize_onnx.py and checks sha256 sums.

usage: attention_to_onnx.py face_landmark_with_attention.tflite OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tflite_reader import Model, same_pad  # noqa: E402

# file stem -> (tflite input tensor, its name in the ONNX file, tflite output tensors)
PARTS = {
    'face_landmark_with_attention':
        ('input_1', 'input_1', ['output_mesh', 'conv_faceflag', 'p_re_lu_3']),
    'face_landmark_with_attention_lips':
        ('transform_tensor_bilinear_v2', 'lips_crop', ['conv_lips']),
    'face_landmark_with_attention_left_eye':
        ('transform_tensor_bilinear_v2_1', 'left_eye_crop', ['conv_left_eye', 'conv_left_iris']),
    'face_landmark_with_attention_right_eye':
        ('transform_tensor_bilinear_v2_2', 'right_eye_crop', ['conv_right_eye', 'conv_right_iris']),
}


class Converter:
    def __init__(self, path):
        self.m = Model(path)
        self.index = {self.m.tname(i): i for i in range(self.m.g.TensorsLength())}
        self.producer = {o: op for op in self.m.ops for o in op[3]}

    def const(self, i):
        """fp32 value of a constant tensor, stored directly or behind a DEQUANTIZE."""
        if i not in self.m.const:
            _, name, ins, _, _, _ = self.producer[i]
            assert name == 'DEQUANTIZE', name
            i = ins[0]
        return self.m.const[i].astype(np.float32)

    def nchw(self, i):
        s = [int(v) for v in self.m.shape(i)]
        return [s[0], s[3], s[1], s[2]] if len(s) == 4 else s

    def part(self, graph_name, tfl_input, onnx_input, outputs):
        """The ONNX model computing `outputs` from `tfl_input` (all ops between them)."""
        m = self.m
        start = self.index[tfl_input]
        name = lambda i: onnx_input if i == start else m.tname(i)  # noqa: E731
        # the operators needed: walk back from the outputs, stopping at the input
        need, stack = set(), [self.index[o] for o in outputs]
        while stack:
            t = stack.pop()
            if t == start or t not in self.producer:
                continue
            k, op_name, ins = self.producer[t][:3]
            if k in need:
                continue
            need.add(k)
            if op_name != 'DEQUANTIZE':
                stack.extend(i for i in ins if i >= 0)

        nodes, inits = [], {}

        def init(init_name, arr):
            inits[init_name] = numpy_helper.from_array(np.ascontiguousarray(arr), init_name)
            return init_name

        for k, op_name, ins, outs, op, _ in m.ops:
            if k not in need or op_name == 'DEQUANTIZE':
                continue
            x, out = ins[0], name(outs[0])
            if op_name in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
                dw = op_name == 'DEPTHWISE_CONV_2D'
                o = m.opts(op, tflite.DepthwiseConv2DOptions if dw else tflite.Conv2DOptions)
                assert o.FusedActivationFunction() == 0
                assert o.DilationHFactor() == 1 and o.DilationWFactor() == 1
                w, b = self.const(ins[1]), self.const(ins[2])
                # tflite [O,KH,KW,I] (conv) or [1,KH,KW,C] (depthwise) -> ONNX [O, I/group, KH, KW]
                w = w.transpose(3, 0, 1, 2) if dw else w.transpose(0, 3, 1, 2)
                kh, kw = w.shape[2], w.shape[3]
                if o.Padding() == 0:  # SAME
                    _, pt, pb = same_pad(m.shape(x)[1], kh, o.StrideH())
                    _, pl, pr = same_pad(m.shape(x)[2], kw, o.StrideW())
                else:  # VALID
                    pt = pb = pl = pr = 0
                base = m.tname(outs[0])
                nodes.append(helper.make_node(
                    'Conv', [name(x), init(base + '/Kernel', w), init(base + '/Bias', b)], [out],
                    dilations=[1, 1], group=int(w.shape[0]) if dw else 1, kernel_shape=[kh, kw],
                    pads=[pt, pl, pb, pr], strides=[o.StrideH(), o.StrideW()]))
            elif op_name == 'PRELU':
                alpha = self.const(ins[1]).reshape(1, -1, 1, 1)
                nodes.append(helper.make_node(
                    'PRelu', [name(x), init(m.tname(outs[0]) + '/Alpha', alpha)], [out]))
            elif op_name == 'ADD':
                assert m.opts(op, tflite.AddOptions).FusedActivationFunction() == 0
                nodes.append(helper.make_node('Add', [name(ins[0]), name(ins[1])], [out]))
            elif op_name == 'MAX_POOL_2D':
                o = m.opts(op, tflite.Pool2DOptions)
                assert o.Padding() == 1 and o.FusedActivationFunction() == 0  # VALID
                nodes.append(helper.make_node(
                    'MaxPool', [name(x)], [out], auto_pad='VALID',
                    kernel_shape=[o.FilterHeight(), o.FilterWidth()],
                    strides=[o.StrideH(), o.StrideW()]))
            elif op_name == 'PAD':
                p = m.const[ins[1]].astype(np.int64)  # NHWC [[n0,n1],[h0,h1],[w0,w1],[c0,c1]]
                assert not p[:3].any(), 'only channel padding is expected'
                pads = np.array([p[0, 0], p[3, 0], p[1, 0], p[2, 0],
                                 p[0, 1], p[3, 1], p[1, 1], p[2, 1]], np.int64)
                nodes.append(helper.make_node(
                    'Pad', [name(x), init(m.tname(outs[0]) + '/Paddings', pads)], [out],
                    mode='constant'))
            else:
                raise NotImplementedError(op_name)

        value = lambda i: helper.make_tensor_value_info(  # noqa: E731
            name(i), TensorProto.FLOAT, self.nchw(i))
        graph = helper.make_graph(
            nodes, graph_name, [value(start)], [value(self.index[o]) for o in outputs],
            initializer=[inits[k] for k in sorted(inits)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)],
                                  producer_name='attention_to_onnx.py')
        model.ir_version = 6
        onnx.checker.check_model(model)
        return model


def main(src, out_dir):
    conv = Converter(src)
    os.makedirs(out_dir, exist_ok=True)
    for stem, (tfl_input, onnx_input, outputs) in PARTS.items():
        model = conv.part(stem, tfl_input, onnx_input, outputs)
        onnx.save(model, os.path.join(out_dir, stem + '.onnx'))
        counts = {}
        for node in model.graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        print(f'{stem}.onnx: {len(model.graph.node)} nodes {dict(sorted(counts.items()))}')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
