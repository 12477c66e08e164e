"""Split face_landmark_with_attention.tflite into standard-op parts around the custom ops and count
ops/MACs per part (forward reachability from each crop; backward from mesh/faceflag for the trunk)."""
import collections, numpy as np
from tflite_numpy import Model
m = Model('face_landmark_with_attention.tflite')
macs = {}; m.run(np.zeros((1, 192, 192, 3), np.float32), macs=macs)
prod = {o: k for k, n, ins, outs, *_ in m.ops for o in outs}
byk = {k: (n, ins, outs) for k, n, ins, outs, *_ in m.ops}
consumers = collections.defaultdict(list)
for k, n, ins, outs, *_ in m.ops:
    for i in ins: consumers[i].append(k)
def fwd(tensors):
    seen, st = set(), list(tensors)
    while st:
        t = st.pop()
        for k in consumers[t]:
            if k not in seen: seen.add(k); st.extend(byk[k][2])
    return seen
def bwd(tensors):
    seen, st = set(), list(tensors)
    while st:
        t = st.pop()
        k = prod.get(t)
        if k is not None and k not in seen: seen.add(k); st.extend(byk[k][1])
    return seen
T = {m.tname(i): i for i in range(m.g.TensorsLength())}
trunk = bwd([T['output_mesh'], T['conv_faceflag']])
stem = bwd([T['p_re_lu_3']])
parts = {'stem (input -> p_re_lu_3 48x48x32)': stem, 'trunk rest (-> output_mesh, conv_faceflag)': trunk - stem}
for crop, nm in [('transform_tensor_bilinear_v2', 'lips head'), ('transform_tensor_bilinear_v2_1', 'left eye+iris head'),
                 ('transform_tensor_bilinear_v2_2', 'right eye+iris head')]:
    parts[nm + f' (from {crop})'] = fwd([T[crop]])
allk = set(byk)
covered = set().union(*parts.values())
parts['rest (custom ops, MUL/RESHAPE glue)'] = allk - covered
for nm, ks in parts.items():
    cnt = collections.Counter(byk[k][0] for k in ks if byk[k][0] != 'DEQUANTIZE')
    print(f'{nm}: {sum(macs.get(k, 0) for k in ks)/1e6:.3f} M MACs; ops {dict(cnt)}')
    heads_out = sorted({m.tname(o) for k in ks for o in byk[k][2] if m.tname(o).startswith(('conv_', 'output_'))})
    print('   named outputs:', heads_out)
# overlap check between heads
hs = [v for k, v in parts.items() if 'head' in k]
print('head overlap:', [len(a & b) for a in hs for b in hs if a is not b])
# per-output conv tails of eye heads
for k in sorted(parts['left eye+iris head (from transform_tensor_bilinear_v2_1)']):
    n, ins, outs = byk[k]
    if n in ('CONV_2D', 'DEPTHWISE_CONV_2D') and len(consumers[outs[0]]) > 1:
        print('   branch point in left eye head:', k, n, m.tname(outs[0]), m.shape(outs[0]), [byk[c][0] for c in consumers[outs[0]]])
print('--- eye head split')
for a, b in [('conv_left_eye', 'conv_left_iris'), ('conv_lips', 'conv_lips')]:
    A, B = bwd([T[a]]) - stem - trunk, bwd([T[b]]) - stem - trunk
    A -= set(k for k in A if byk[k][0] in ('Landmarks2TransformMatrix','TransformTensorBilinear','MUL','RESHAPE'))
    B -= set(k for k in B if byk[k][0] in ('Landmarks2TransformMatrix','TransformTensorBilinear','MUL','RESHAPE'))
    sh = A & B
    print(f'{a}/{b}: shared {sum(macs.get(k,0) for k in sh)/1e6:.3f} M, {a} only {sum(macs.get(k,0) for k in A-sh)/1e6:.3f} M, {b} only {sum(macs.get(k,0) for k in B-sh)/1e6:.3f} M')
    last_shared = max(sh); print('   last shared op', last_shared, byk[last_shared][0], m.tname(byk[last_shared][2][0]), m.shape(byk[last_shared][2][0]))
