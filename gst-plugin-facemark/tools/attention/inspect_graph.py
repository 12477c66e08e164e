import sys, collections, numpy as np, tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType
OPN = {v:k for k,v in BuiltinOperator.__dict__.items() if not k.startswith('_')}
TT = {v:k for k,v in TensorType.__dict__.items() if not k.startswith('_')}
buf = open(sys.argv[1],'rb').read()
m = tflite.Model.GetRootAsModel(buf, 0)
g = m.Subgraphs(0)
print("subgraphs", m.SubgraphsLength(), "ops", g.OperatorsLength(), "tensors", g.TensorsLength())
def tinfo(i):
    t = g.Tensors(i); return f"{i}:{t.Name().decode()}{list(t.ShapeAsNumpy()) if t.ShapeLength() else []}{TT[t.Type()]}"
print("inputs", [tinfo(i) for i in g.InputsAsNumpy()])
print("outputs", [tinfo(i) for i in g.OutputsAsNumpy()])
cnt = collections.Counter()
for i in range(g.OperatorsLength()):
    op = g.Operators(i); oc = m.OperatorCodes(op.OpcodeIndex())
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    name = OPN[code] if code != 32 else "CUSTOM:"+oc.CustomCode().decode()+f"(v{oc.Version()})"
    cnt[name]+=1
    if len(sys.argv)>2:
        ins = [tinfo(j) if j>=0 else '-' for j in op.InputsAsNumpy()]
        outs = [tinfo(j) for j in op.OutputsAsNumpy()]
        print(i, name, "IN", ins, "OUT", outs)
print(dict(cnt))
