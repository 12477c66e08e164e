"""Read a .tflite flatbuffer into numpy: tensors, constant buffers and operators (first subgraph).

Used by scripts/attention_to_onnx.py (and by the numpy interpreter in
gst-plugin-facemark/tools/attention/tflite_numpy.py). Needs the `tflite` package (2.18.0), which
brings `flatbuffers`.
"""
import numpy as np
import tflite
from flatbuffers import flexbuffers
from tflite.BuiltinOperator import BuiltinOperator

# builtin operator code -> name ("CONV_2D", ...); tflite TensorType -> numpy dtype
OP_NAMES = {v: k for k, v in BuiltinOperator.__dict__.items() if not k.startswith('_')}
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


def same_pad(n, k, s, d=1):
    """TFLite SAME padding along one axis: (output size, pad before, pad after)."""
    out = (n + s - 1) // s
    ke = (k - 1) * d + 1
    total = max((out - 1) * s + ke - n, 0)
    return out, total // 2, total - total // 2


class Model:
    """self.const: tensor index -> numpy array (tensors that have a buffer, as stored: fp16 stays fp16).
    self.ops: (index, name, input tensor indices, output tensor indices, tflite.Operator, custom options)
    in stored (execution) order; name is the builtin name or the custom op's code; custom options
    are the decoded flexbuffer map or None."""

    def __init__(self, path):
        with open(path, 'rb') as f:
            self.buf = f.read()
        self.m = tflite.Model.GetRootAsModel(self.buf, 0)
        self.g = g = self.m.Subgraphs(0)
        self.const = {}
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            b = self.m.Buffers(t.Buffer())
            if b is not None and b.DataLength():
                shape = tuple(t.ShapeAsNumpy()) if t.ShapeLength() else ()
                self.const[i] = np.frombuffer(b.DataAsNumpy().tobytes(), DTYPES[t.Type()]).reshape(shape)
        self.ops = []
        for k in range(g.OperatorsLength()):
            op = g.Operators(k)
            oc = self.m.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = None
            if code == BuiltinOperator.CUSTOM:
                name = oc.CustomCode().decode()
                if op.CustomOptionsLength():
                    custom = flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes())
            else:
                name = OP_NAMES[code]
            self.ops.append((k, name, list(op.InputsAsNumpy()), list(op.OutputsAsNumpy()), op, custom))
        self.inputs = list(g.InputsAsNumpy())
        self.outputs = list(g.OutputsAsNumpy())

    def tname(self, i):
        return self.g.Tensors(i).Name().decode()

    def shape(self, i):
        return tuple(self.g.Tensors(i).ShapeAsNumpy())

    def opts(self, op, cls):
        """The operator's builtin options as `cls` (e.g. tflite.Conv2DOptions)."""
        o = cls()
        t = op.BuiltinOptions()
        o.Init(t.Bytes, t.Pos)
        return o
