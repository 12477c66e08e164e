"""Minimal numpy interpreter for the face_landmark(_with_attention).tflite graphs.

Reads the flatbuffer with scripts/tflite_reader.py (`tflite` package 2.18.0), dequantizes fp16
weights to fp32, runs the operators in their stored order. Standard ops: DEQUANTIZE, CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL,
PRELU, MAX_POOL_2D, PAD, RESHAPE, STRIDED_SLICE (identity here). Custom ops from ops.py.
Also counts MACs per op (conv/depthwise only; MACs = out_h*out_w*out_c*k_h*k_w*(in_c or 1)).
"""
import os
import sys
import numpy as np
import tflite
import ops

# The flatbuffer reader (Model's constructor, tname, shape, opts; same_pad) is shared with the
# converter that scripts/fetch-models.sh runs.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../scripts'))
import tflite_reader  # noqa: E402
from tflite_reader import same_pad  # noqa: E402


def act(x, code):
    if code == 0:
        return x
    if code == 1:
        return np.maximum(x, 0)
    if code == 3:
        return np.clip(x, 0, 6)
    raise NotImplementedError(f"activation {code}")


class Model(tflite_reader.Model):
    def run(self, x, keep=False, macs=None):
        v = dict(self.const)
        v[self.inputs[0]] = np.asarray(x, np.float32).reshape(self.shape(self.inputs[0]))
        for k, name, ins, outs, op, custom in self.ops:
            a = [v[i] if i >= 0 else None for i in ins]
            if name == 'DEQUANTIZE':
                r = a[0].astype(np.float32)
            elif name == 'CONV_2D':
                o = self.opts(op, tflite.Conv2DOptions)
                r = self.conv(a[0], a[1], a[2], o.StrideH(), o.StrideW(), o.Padding(), o.DilationHFactor(), o.DilationWFactor(), False)
                r = act(r, o.FusedActivationFunction())
                if macs is not None:
                    w = a[1]; macs[k] = r.shape[1] * r.shape[2] * w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3]
            elif name == 'DEPTHWISE_CONV_2D':
                o = self.opts(op, tflite.DepthwiseConv2DOptions)
                assert o.DepthMultiplier() in (0, 1)
                r = self.conv(a[0], a[1], a[2], o.StrideH(), o.StrideW(), o.Padding(), o.DilationHFactor(), o.DilationWFactor(), True)
                r = act(r, o.FusedActivationFunction())
                if macs is not None:
                    w = a[1]; macs[k] = r.shape[1] * r.shape[2] * w.shape[3] * w.shape[1] * w.shape[2]
            elif name == 'ADD':
                o = self.opts(op, tflite.AddOptions)
                r = act(a[0] + a[1], o.FusedActivationFunction())
            elif name == 'MUL':
                o = self.opts(op, tflite.MulOptions)
                r = act(a[0] * a[1], o.FusedActivationFunction())
            elif name == 'PRELU':
                r = np.where(a[0] >= 0, a[0], a[0] * a[1])
            elif name == 'MAX_POOL_2D':
                o = self.opts(op, tflite.Pool2DOptions)
                r = act(self.maxpool(a[0], o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW(), o.Padding()), o.FusedActivationFunction())
            elif name == 'PAD':
                r = np.pad(a[0], a[1].astype(int))
            elif name == 'RESHAPE':
                r = a[0].reshape(self.shape(outs[0]))
            elif name == 'STRIDED_SLICE':
                b, e, s = a[1], a[2], a[3]
                assert np.all(b == 0) and np.all(s == 1) and tuple(e) == a[0].shape
                r = a[0]
            elif name == 'Landmarks2TransformMatrix':
                r = ops.landmarks_to_transform_matrix_v2(a[0], **custom)
            elif name == 'TransformTensorBilinear':
                r = ops.transform_tensor_bilinear_v2(a[0], a[1], custom['output_height'], custom['output_width'])
            elif name == 'TransformLandmarks':
                r = ops.transform_landmarks_v2(a[0], a[1])
            else:
                raise NotImplementedError(name)
            r = np.asarray(r, np.float32)
            assert r.shape == self.shape(outs[0]), (k, name, r.shape, self.shape(outs[0]))
            v[outs[0]] = r
        if keep:
            return v
        return {self.tname(i): v[i] for i in self.outputs}

    @staticmethod
    def conv(x, w, b, sh, sw, padding, dh, dw, depthwise):
        # x [1,H,W,C]; w [O,KH,KW,I] (conv) or [1,KH,KW,C] (depthwise); padding 0=SAME 1=VALID
        _, H, W, C = x.shape
        KH, KW = w.shape[1], w.shape[2]
        if padding == 0:
            OH, pt, pb = same_pad(H, KH, sh, dh)
            OW, pl, pr = same_pad(W, KW, sw, dw)
        else:
            OH = (H - (KH - 1) * dh - 1) // sh + 1
            OW = (W - (KW - 1) * dw - 1) // sw + 1
            pt = pb = pl = pr = 0
        xp = np.pad(x[0], ((pt, pb), (pl, pr), (0, 0)))
        if KH == 1 and KW == 1 and not depthwise:
            patch = xp[::sh, ::sw][:OH, :OW]
            out = patch.reshape(-1, C) @ w.reshape(w.shape[0], C).T
            out = out.reshape(OH, OW, -1)
        elif depthwise:
            out = np.zeros((OH, OW, C), np.float32)
            for i in range(KH):
                for j in range(KW):
                    out += xp[i * dh: i * dh + (OH - 1) * sh + 1: sh, j * dw: j * dw + (OW - 1) * sw + 1: sw] * w[0, i, j]
        else:
            cols = np.empty((OH, OW, KH, KW, C), np.float32)
            for i in range(KH):
                for j in range(KW):
                    cols[:, :, i, j] = xp[i * dh: i * dh + (OH - 1) * sh + 1: sh, j * dw: j * dw + (OW - 1) * sw + 1: sw]
            out = cols.reshape(OH * OW, -1) @ w.reshape(w.shape[0], -1).T
            out = out.reshape(OH, OW, -1)
        if b is not None:
            out = out + b
        return out[None].astype(np.float32)

    @staticmethod
    def maxpool(x, fh, fw, sh, sw, padding):
        _, H, W, C = x.shape
        if padding == 0:
            OH, pt, pb = same_pad(H, fh, sh)
            OW, pl, pr = same_pad(W, fw, sw)
        else:
            OH, OW = (H - fh) // sh + 1, (W - fw) // sw + 1
            pt = pb = pl = pr = 0
        xp = np.pad(x[0], ((pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
        out = np.full((OH, OW, C), -np.inf, np.float32)
        for i in range(fh):
            for j in range(fw):
                out = np.maximum(out, xp[i: i + (OH - 1) * sh + 1: sh, j: j + (OW - 1) * sw + 1: sw])
        return out[None]


if __name__ == '__main__':
    mdl = Model(sys.argv[1])
    macs = {}
    out = mdl.run(np.random.RandomState(0).rand(1, 192, 192, 3).astype(np.float32), macs=macs)
    for k, val in out.items():
        print(k, val.shape, float(val.ravel()[0]))
    print('total MACs', sum(macs.values()))
