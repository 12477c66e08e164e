"""Tiny tflite -> ONNX converter for the standard-op parts of face_landmark_with_attention.tflite.

Emits the same style as tflite2onnx 0.4.1 does for face_landmark.onnx (what the facemark engine
already lowers): opset 11, NCHW tensors, Conv (group=C for depthwise) with explicit pads, PRelu with
slope [1,C,1,1], Add, MaxPool (auto_pad VALID), Pad (pads input, channel padding only), fp32
initializers (fp16 weights dequantized). Tensor names kept from the tflite graph.

Parts written (see REPORT.md):
  trunk.onnx           input_1 [1,3,192,192] -> output_mesh [1,1404,1,1], conv_faceflag [1,1,1,1],
                                                  p_re_lu_3 [1,32,48,48] (feature map for the crops)
  head_lips.onnx       lips_crop [1,32,16,16]  -> conv_lips [1,160,1,1]
  head_left_eye.onnx   left_eye_crop [1,32,16,16] -> conv_left_eye [1,142,1,1], conv_left_iris [1,10,1,1]
  head_right_eye.onnx  right_eye_crop [1,32,16,16] -> conv_right_eye [1,142,1,1], conv_right_iris [1,10,1,1]
"""
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import tflite
from tflite_numpy import Model, same_pad

m = Model('face_landmark_with_attention.tflite')
T = {m.tname(i): i for i in range(m.g.TensorsLength())}
prod = {o: (k, n, ins, outs, op) for k, n, ins, outs, op, _ in m.ops for o in outs}


def const_of(i):
    """fp32 value of a constant tensor (through DEQUANTIZE)."""
    if i in m.const:
        return m.const[i].astype(np.float32) if m.const[i].dtype == np.float16 else m.const[i]
    k, n, ins, outs, op = prod[i]
    assert n == 'DEQUANTIZE'
    return m.const[ins[0]].astype(np.float32)


def nchw_shape(i):
    s = [int(v) for v in m.shape(i)]
    return [s[0], s[3], s[1], s[2]] if len(s) == 4 else s


def build(inputs, outputs, path, rename=None):
    rename = rename or {}
    nm = lambda i: rename.get(m.tname(i), m.tname(i))
    # collect ops backward from outputs, stopping at inputs
    need, stack = set(), [T[o] for o in outputs]
    stop = {T[i] for i in inputs}
    while stack:
        t = stack.pop()
        if t in stop or t not in prod:
            continue
        k = prod[t][0]
        if k in need:
            continue
        need.add(k)
        if prod[t][1] != 'DEQUANTIZE':
            stack.extend(i for i in prod[t][2] if i >= 0)
    nodes, inits = [], {}

    def init(name, arr):
        inits[name] = numpy_helper.from_array(np.ascontiguousarray(arr), name)
        return name
    for k, n, ins, outs, op, _ in m.ops:
        if k not in need or n == 'DEQUANTIZE':
            continue
        x, out = ins[0], nm(outs[0])
        if n in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
            dw = n == 'DEPTHWISE_CONV_2D'
            o = m.opts(op, tflite.DepthwiseConv2DOptions if dw else tflite.Conv2DOptions)
            assert o.FusedActivationFunction() == 0 and o.DilationHFactor() == 1 and o.DilationWFactor() == 1
            w, b = const_of(ins[1]), const_of(ins[2])
            wn = w.transpose(3, 0, 1, 2) if dw else w.transpose(0, 3, 1, 2)   # -> [O, I/g, KH, KW]
            KH, KW = w.shape[1], w.shape[2]
            H, W = m.shape(x)[1], m.shape(x)[2]
            if o.Padding() == 0:
                _, pt, pb = same_pad(H, KH, o.StrideH()); _, pl, pr = same_pad(W, KW, o.StrideW())
            else:
                pt = pb = pl = pr = 0
            base = m.tname(outs[0])
            nodes.append(helper.make_node('Conv', [nm(x), init(base + '/Kernel', wn), init(base + '/Bias', b)], [out],
                                          dilations=[1, 1], group=int(wn.shape[0]) if dw else 1,
                                          kernel_shape=[KH, KW], pads=[pt, pl, pb, pr],
                                          strides=[o.StrideH(), o.StrideW()]))
        elif n == 'PRELU':
            a = const_of(ins[1]).reshape(-1)
            nodes.append(helper.make_node('PRelu', [nm(x), init(m.tname(outs[0]) + '/Alpha', a.reshape(1, -1, 1, 1))], [out]))
        elif n == 'ADD':
            assert m.opts(op, tflite.AddOptions).FusedActivationFunction() == 0
            nodes.append(helper.make_node('Add', [nm(ins[0]), nm(ins[1])], [out]))
        elif n == 'MAX_POOL_2D':
            o = m.opts(op, tflite.Pool2DOptions)
            assert o.Padding() == 1 and o.FusedActivationFunction() == 0
            nodes.append(helper.make_node('MaxPool', [nm(x)], [out], auto_pad='VALID',
                                          kernel_shape=[o.FilterHeight(), o.FilterWidth()], strides=[o.StrideH(), o.StrideW()]))
        elif n == 'PAD':
            p = m.const[ins[1]].astype(np.int64)          # NHWC [[b0,b1],[h0,h1],[w0,w1],[c0,c1]]
            pads = np.array([p[0, 0], p[3, 0], p[1, 0], p[2, 0], p[0, 1], p[3, 1], p[1, 1], p[2, 1]], np.int64)
            nodes.append(helper.make_node('Pad', [nm(x), init(m.tname(outs[0]) + '/Paddings', pads)], [out], mode='constant'))
        else:
            raise NotImplementedError(n)
    vi = lambda i: helper.make_tensor_value_info(nm(i), TensorProto.FLOAT, nchw_shape(i))
    graph = helper.make_graph(nodes, path.split('.')[0], [vi(T[i]) for i in inputs], [vi(T[o]) for o in outputs],
                              initializer=[inits[k] for k in sorted(inits)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 11)], producer_name='to_onnx.py')
    model.ir_version = 6
    onnx.checker.check_model(model)
    onnx.save(model, path)
    print(path, len(nodes), 'nodes', {t: sum(1 for n in nodes if n.op_type == t) for t in sorted({n.op_type for n in nodes})})


if __name__ == '__main__':
    build(['input_1'], ['output_mesh', 'conv_faceflag', 'p_re_lu_3'], 'trunk.onnx')
    build(['transform_tensor_bilinear_v2'], ['conv_lips'], 'head_lips.onnx',
          rename={'transform_tensor_bilinear_v2': 'lips_crop'})
    build(['transform_tensor_bilinear_v2_1'], ['conv_left_eye', 'conv_left_iris'], 'head_left_eye.onnx',
          rename={'transform_tensor_bilinear_v2_1': 'left_eye_crop'})
    build(['transform_tensor_bilinear_v2_2'], ['conv_right_eye', 'conv_right_iris'], 'head_right_eye.onnx',
          rename={'transform_tensor_bilinear_v2_2': 'right_eye_crop'})
