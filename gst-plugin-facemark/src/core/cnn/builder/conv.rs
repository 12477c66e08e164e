//! Lowering a Conv node (with the Add and activation fused into it) to a step.

use super::{Builder, Fused, sliding, unsupported};
use crate::core::cnn::kernels::{self, Packed, Strides};
use crate::core::cnn::onnx::{self, Attrs};
use crate::core::cnn::{ActSpec, Step, Val};

impl Builder<'_> {
    pub(super) fn conv(&mut self, g: Fused) -> Result<(), String> {
        let graph = self.graph;
        let node = &graph.node[g.conv];
        let a = Attrs(node);
        for name in a.names() {
            if !["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"].contains(&name) {
                return unsupported(node, format!("attribute {name}"));
            }
        }
        if a.ints("dilations").is_some_and(|d| d.iter().any(|&d| d != 1)) {
            return unsupported(node, "dilation");
        }
        let src = self.spatial_in(node, 0)?;
        let (wd, wt) = self.f32_const(node, 1)?;
        let (wd, wt) = (wd.to_vec(), wt.to_vec());
        let &[co, ci, kh, kw] = wd.as_slice() else {
            return unsupported(node, "weights are not 4-D");
        };
        let bias_in = if node.input.len() > 2 && !node.input[2].is_empty() {
            let (_, b) = self.f32_const(node, 2)?;
            if b.len() != co {
                return unsupported(node, "bias length");
            }
            Some(b.to_vec())
        } else {
            None
        };
        let group = a.int("group", 1) as usize;
        if a.ints("kernel_shape").is_some_and(|k| k != [kh as i64, kw as i64]) {
            return unsupported(node, "kernel_shape differs from the weights");
        }
        let strides = a.ints("strides").unwrap_or(vec![1, 1]);
        let pads = a.ints("pads").unwrap_or(vec![0; 4]);
        let (&[sy, sx], &[pt, pl, pb, pr]) = (strides.as_slice(), pads.as_slice()) else {
            return unsupported(node, "strides or pads are not 2-D");
        };
        if sy != sx || sy <= 0 || [pt, pl, pb, pr].iter().any(|&p| p < 0) {
            return unsupported(node, "unequal strides or negative pads");
        }
        let stride = sy as usize;
        let auto_pad = a.string("auto_pad").unwrap_or_default();
        let ay =
            onnx::window(&auto_pad, src.h, kh, stride, (pt as usize, pb as usize)).or_else(|e| unsupported(node, e))?;
        let ax =
            onnx::window(&auto_pad, src.w, kw, stride, (pl as usize, pr as usize)).or_else(|e| unsupported(node, e))?;
        let dst = self.spatial(co, ay.out, ax.out);
        let cp = dst.cp;
        let mut bias = vec![0.0; cp];
        if let Some(b) = bias_in {
            bias[..co].copy_from_slice(&b);
        }
        let residual = match g.add {
            Some(add) => {
                let n = &graph.node[add];
                let other = if n.input[0] == node.output[0] { 1 } else { 0 };
                let r = self.spatial_in(n, other)?;
                // The model's input (the attention heads add theirs to a convolution's output)
                // is planar: added from an NHWC copy.
                let r = if r.nchw { self.plain(r) } else { r };
                if r.c != co || r.h != dst.h || r.w != dst.w || r.cp > cp {
                    return unsupported(n, "operands of different shapes");
                }
                Some(r)
            }
            None => None,
        };
        let act = match g.act {
            Some(i) => self.activation(&graph.node[i], co, cp)?,
            None => ActSpec::Linear,
        };
        let last = g.act.or(g.add).unwrap_or(g.conv);
        let rows = dst.h * dst.w;
        let step = if group == 1 {
            if ci != src.c {
                return unsupported(node, "weights do not match the input channels");
            }
            if kh == 1 && kw == 1 && stride == 1 && ay.pad_begin == 0 && ax.pad_begin == 0 {
                let src = self.plain(src);
                let weights = Packed::new(self.isa, ci, co, cp, rows, |k, n| wt[n * ci + k]);
                Step::Pointwise { src, dst, weights, bias, act, residual }
            } else {
                let src = if src.nchw { src } else { self.plain(src) };
                let (oh, ow) = (dst.h, dst.w);
                // Each output row is one GEMM whose last tile runs past the row: the buffer read
                // must hold what those extra rows read too.
                let (mr, _) = self.isa.gemm_tile(cp, ow);
                let cols = |st: Strides| kernels::conv_cols(kh, kw, ci, st);
                let extent = |st: Strides| {
                    (oh - 1) * stride * st.y
                        + (ow.div_ceil(mr) * mr - 1) * stride * st.x
                        + cols(st).iter().max().map_or(0, |m| m + 1)
                };
                let inside = (oh - 1) * stride + kh <= src.h && (ow - 1) * stride + kw <= src.w;
                let (input, strides) = if inside && !src.nchw && ay.pad_begin == 0 && ax.pad_begin == 0 {
                    let st = src.strides();
                    self.sizes[src.v] = self.sizes[src.v].max(extent(st));
                    (src.v, st)
                } else {
                    // A copy with zero borders where windows reach past the map: planar for
                    // the model's input (which can then be written there directly), NHWC for
                    // feature maps.
                    let wp = (ax.pad_begin + src.w).max((ow - 1) * stride + kw);
                    let hp = (ay.pad_begin + src.h).max((oh - 1) * stride + kh);
                    let st = if src.nchw {
                        Strides { c: hp * wp, y: wp, x: 1 }
                    } else {
                        Strides { c: 1, y: wp * src.cp, x: src.cp }
                    };
                    let placed = self.value((src.c * hp * wp).max(hp * st.y).max(extent(st)));
                    self.bordered.insert(placed);
                    self.steps.push(Step::Place {
                        src,
                        dst: placed,
                        strides: st,
                        origin: ay.pad_begin * st.y + ax.pad_begin * st.x,
                    });
                    // The window of output (0, 0) starts at the buffer's (0, 0).
                    (placed, st)
                };
                let k = kh * kw * ci;
                let weights = Packed::new(self.isa, k, co, cp, ow, |kk, n| {
                    let (tap, c) = (kk / ci, kk % ci);
                    let (y, x) = (tap / kw, tap % kw);
                    wt[((n * ci + c) * kh + y) * kw + x]
                });
                Step::Full { input, strides, stride, cols: cols(strides), dst, weights, bias, act, residual }
            }
        } else if group == src.c && co == src.c && ci == 1 && kh == kw {
            if !kernels::depthwise_supports(kh) {
                return unsupported(node, format!("depthwise kernel {kh}x{kw}"));
            }
            if residual.is_some() {
                return unsupported(node, "residual after a depthwise convolution");
            }
            let src = self.plain(src);
            let mut weights = vec![0.0; kh * kw * cp];
            for c in 0..co {
                for t in 0..kh * kw {
                    weights[t * cp + c] = wt[c * kh * kw + t];
                }
            }
            Step::Depthwise { src, dst, win: sliding(&src, &dst, kh, stride, (ay, ax)), weights, bias, act }
        } else {
            return unsupported(node, format!("group {group}"));
        };
        self.steps.push(step);
        self.vals.insert(graph.node[last].output[0].clone(), Val::Spatial(dst));
        Ok(())
    }
}
