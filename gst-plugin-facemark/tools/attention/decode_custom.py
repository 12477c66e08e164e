import sys, numpy as np, tflite
from flatbuffers import flexbuffers
from tflite.BuiltinOperator import BuiltinOperator
buf = open(sys.argv[1],'rb').read()
m = tflite.Model.GetRootAsModel(buf, 0); g = m.Subgraphs(0)
def const(i):
    """constant value of tensor i, following a DEQUANTIZE producer if present"""
    t = g.Tensors(i); b = m.Buffers(t.Buffer())
    if b.DataLength(): 
        dt = {0:np.float32,1:np.float16,2:np.int32}[t.Type()]
        return np.frombuffer(b.DataAsNumpy().tobytes(), dt).reshape(t.ShapeAsNumpy())
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        if list(op.OutputsAsNumpy()) == [i]:
            oc = m.OperatorCodes(op.OpcodeIndex())
            if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == BuiltinOperator.DEQUANTIZE:
                return const(op.InputsAsNumpy()[0]).astype(np.float32)
    return None
for k in range(g.OperatorsLength()):
    op = g.Operators(k); oc = m.OperatorCodes(op.OpcodeIndex())
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    nm = lambda i: g.Tensors(i).Name().decode()
    if code == 32:
        raw = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b''
        d = flexbuffers.Loads(raw) if raw else None
        print(f"op {k} {oc.CustomCode().decode()} v{oc.Version()} in={[nm(i) for i in op.InputsAsNumpy()]} out={[nm(i) for i in op.OutputsAsNumpy()]}")
        print(f"   custom_options {len(raw)} bytes: {raw.hex()}")
        print(f"   decoded: {d}")
    elif code in (BuiltinOperator.MUL, BuiltinOperator.PAD, BuiltinOperator.STRIDED_SLICE):
        for i in op.InputsAsNumpy()[1:]:
            c = const(i)
            print(f"op {k} {'MUL' if code==BuiltinOperator.MUL else 'PAD' if code==BuiltinOperator.PAD else 'STRIDED_SLICE'} {nm(op.InputsAsNumpy()[0])} const {nm(i)} = {c.tolist() if c is not None else None}")
