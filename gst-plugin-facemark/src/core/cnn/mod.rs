//! A small inference engine for convolutional networks like MediaPipe's face models, built from
//! the ONNX graph as tract-onnx parses it.
//!
//! Why it exists: tract runs these models in NCHW, one op at a time (a PReLU or a residual add
//! is another pass over memory, its depthwise kernel is scalar for stride 2, channel padding is
//! a copy), which made it 2.7x slower than MediaPipe's runtime. Here tensors are NHWC with the
//! channels padded to whole vectors, so that:
//! - 1x1 convolutions are one GEMM over pixels, and full convolutions a GEMM over patches, with
//!   the bias, a residual `Add` and the `Relu`/`PRelu` after it applied while the result is
//!   still in registers;
//! - depthwise convolutions and max pooling run across channels, a vector at a time;
//! - zero channel padding (`Pad` on the channel axis before a residual add) costs nothing: the
//!   extra channels are the zeros already there;
//! - every buffer is allocated once, and reused by later layers once its value is dead.
//!
//! Graphs with an op or attribute outside what is described here are refused with the reason,
//! and the caller runs them with tract instead.

pub mod kernels;
mod onnx;
mod simd;

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, ModelProto, NodeProto};

use super::image::Planes;

pub use kernels::Isa;
use kernels::{Act, Packed, ROW_SLACK, Strides, Window, padded};
use onnx::{Attrs, Const};

type ValueId = usize;

/// The largest tensor the engine makes (64 MiB of floats, some 40 times the largest tensor of
/// the face models): a model asking for more is refused.
pub const MAX_FLOATS: usize = 1 << 24;

/// The most floats a model's tensors may hold together (256 MiB, some 10 times what those of the
/// landmark model add up to): many tensors under [`MAX_FLOATS`] must not add up to gigabytes.
pub const MAX_TOTAL_FLOATS: usize = 1 << 26;

/// A feature map: NHWC with `cp` floats per pixel (the first `min(c, cp)` channels stored, the
/// rest of the stored lanes zero, channels past `cp` zero by definition), or the model's NCHW
/// input.
#[derive(Clone, Copy, Debug)]
struct Spatial {
    v: ValueId,
    c: usize,
    cp: usize,
    h: usize,
    w: usize,
    nchw: bool,
}

impl Spatial {
    fn strides(&self) -> Strides {
        if self.nchw {
            Strides {
                c: self.h * self.w,
                y: self.w,
                x: 1,
            }
        } else {
            Strides {
                c: 1,
                y: self.w * self.cp,
                x: self.cp,
            }
        }
    }

    /// Channels that are in memory (the others are zero).
    fn stored(&self) -> usize {
        self.c.min(self.cp)
    }

    /// NHWC holding all its channels: what the kernels other than im2col take.
    fn is_plain(&self) -> bool {
        !self.nchw && self.cp == padded(self.c)
    }
}

/// A value of the graph as the engine holds it.
#[derive(Clone, Debug)]
enum Val {
    Spatial(Spatial),
    /// Row-major values with an ONNX shape.
    Flat {
        v: ValueId,
        shape: Vec<usize>,
    },
}

#[derive(Clone, Debug)]
enum ActSpec {
    Linear,
    Relu,
    /// Slopes padded to the output's `cp`.
    PRelu(Vec<f32>),
}

impl ActSpec {
    fn get(&self) -> Act<'_> {
        match self {
            ActSpec::Linear => Act::Linear,
            ActSpec::Relu => Act::Relu,
            ActSpec::PRelu(s) => Act::PRelu(s),
        }
    }
}

#[derive(Debug)]
enum Step {
    /// A 1x1 convolution: one GEMM with the pixels as rows.
    Pointwise {
        src: Spatial,
        dst: Spatial,
        weights: Packed,
        bias: Vec<f32>,
        act: ActSpec,
        residual: Option<Spatial>,
    },
    /// Any other single-group convolution: a GEMM per output row reading the (placed) input
    /// in place, each output pixel's window through `cols`.
    Full {
        /// The buffer read: the source itself, or its zero-bordered copy (see `Place`).
        input: ValueId,
        /// Where value (c, y, x) of a window at the buffer's origin is.
        strides: Strides,
        stride: usize,
        cols: Vec<usize>,
        dst: Spatial,
        weights: Packed,
        bias: Vec<f32>,
        act: ActSpec,
        residual: Option<Spatial>,
    },
    /// A copy of a map into a zero-bordered buffer for a padded convolution.
    Place {
        src: Spatial,
        dst: ValueId,
        strides: Strides,
        /// Where the map's value (0, 0, 0) goes.
        origin: usize,
    },
    Depthwise {
        src: Spatial,
        dst: Spatial,
        win: Window,
        weights: Vec<f32>,
        bias: Vec<f32>,
        act: ActSpec,
    },
    MaxPool {
        src: Spatial,
        dst: Spatial,
        win: Window,
    },
    /// An `Add` of two feature maps that no convolution took in.
    Add {
        a: Spatial,
        b: Spatial,
        dst: Spatial,
    },
    /// A `Relu` or `PRelu` that no convolution took in.
    Activation {
        src: Spatial,
        dst: Spatial,
        act: ActSpec,
    },
    /// A copy into plain NHWC (all channels stored).
    Widen { src: Spatial, dst: Spatial },
    /// A copy into row-major NCHW (`nhwc: false`) or NHWC (`nhwc: true`, a Transpose).
    Flatten {
        src: Spatial,
        dst: ValueId,
        nhwc: bool,
    },
    /// Row-major concatenation: for each of `outer` slices, each input's chunk in turn.
    Concat {
        srcs: Vec<(ValueId, usize)>,
        dst: ValueId,
        outer: usize,
    },
}

impl Step {
    /// The step's kind and output shape, for profiles.
    fn describe(&self) -> String {
        let shape = |s: &Spatial| format!("{}x{}x{}", s.h, s.w, s.c);
        match self {
            Step::Pointwise {
                src, dst, residual, ..
            } => format!(
                "pointwise {}->{}{}",
                src.c,
                shape(dst),
                if residual.is_some() { " +res" } else { "" }
            ),
            Step::Full {
                cols, stride, dst, ..
            } => {
                format!("conv {} taps/{stride} ->{}", cols.len(), shape(dst))
            }
            Step::Place { src, .. } => format!("place {}", shape(src)),
            Step::Depthwise { win, dst, .. } => {
                format!("depthwise {0}x{0}/{1} {2}", win.k, win.stride, shape(dst))
            }
            Step::MaxPool { win, dst, .. } => {
                format!("maxpool {0}x{0}/{1} {2}", win.k, win.stride, shape(dst))
            }
            Step::Add { dst, .. } => format!("add {}", shape(dst)),
            Step::Activation { dst, .. } => format!("activation {}", shape(dst)),
            Step::Widen { dst, .. } => format!("widen {}", shape(dst)),
            Step::Flatten { src, nhwc, .. } => {
                format!("flatten{} {}", if *nhwc { " nhwc" } else { "" }, shape(src))
            }
            Step::Concat { srcs, .. } => format!("concat {}", srcs.len()),
        }
    }

    fn reads(&self) -> Vec<ValueId> {
        match self {
            Step::Pointwise { src, residual, .. } => std::iter::once(src.v)
                .chain(residual.map(|r| r.v))
                .collect(),
            Step::Full {
                input, residual, ..
            } => std::iter::once(*input)
                .chain(residual.map(|r| r.v))
                .collect(),
            Step::Place { src, .. } => vec![src.v],
            Step::Depthwise { src, .. }
            | Step::MaxPool { src, .. }
            | Step::Activation { src, .. }
            | Step::Widen { src, .. }
            | Step::Flatten { src, .. } => vec![src.v],
            Step::Add { a, b, .. } => vec![a.v, b.v],
            Step::Concat { srcs, .. } => srcs.iter().map(|s| s.0).collect(),
        }
    }

    fn writes(&self) -> ValueId {
        match self {
            Step::Pointwise { dst, .. }
            | Step::Full { dst, .. }
            | Step::Depthwise { dst, .. }
            | Step::MaxPool { dst, .. }
            | Step::Add { dst, .. }
            | Step::Activation { dst, .. }
            | Step::Widen { dst, .. } => dst.v,
            Step::Flatten { dst, .. } | Step::Concat { dst, .. } | Step::Place { dst, .. } => *dst,
        }
    }
}

/// A buffer of floats whose first element is 64-byte aligned.
struct Buffer {
    data: Vec<f32>,
    off: usize,
    len: usize,
}

impl Buffer {
    fn new(len: usize) -> Buffer {
        let data = vec![0.0f32; len + 16];
        let off = (data.as_ptr() as usize).wrapping_neg() % 64 / 4;
        Buffer { data, off, len }
    }

    fn get(&self) -> &[f32] {
        &self.data[self.off..self.off + self.len]
    }

    fn get_mut(&mut self) -> &mut [f32] {
        &mut self.data[self.off..self.off + self.len]
    }
}

/// One model compiled for one input shape.
pub struct Engine {
    isa: Isa,
    steps: Vec<Step>,
    buffers: Vec<Buffer>,
    /// The buffer holding each value.
    slot: Vec<usize>,
    input: ValueId,
    /// The input's strides (x is 1) and where its value (0, 0, 0) is.
    input_view: (Strides, usize),
    /// (name, value, element count) of each output, in the graph's order.
    outputs: Vec<(String, ValueId, usize)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("isa", &self.isa)
            .field("steps", &self.steps.len())
            .field("buffers", &self.buffers.len())
            .finish()
    }
}

impl Engine {
    /// Compiles `model` for an NCHW input of `input` dims, keeping the outputs named in `keep`
    /// (all when empty). Errors say what the engine does not support.
    pub fn build(
        model: &ModelProto,
        input: [usize; 4],
        keep: &[&str],
        isa: Isa,
    ) -> Result<Engine, String> {
        let graph = model.graph.as_ref().ok_or("the model has no graph")?;
        Builder::new(graph, isa)?.build(input, keep)
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The input image to fill before [`Engine::run`]: planar, NCHW or with the borders the
    /// first convolution reads.
    pub fn input(&mut self) -> Planes<'_> {
        let (st, origin) = self.input_view;
        Planes {
            data: &mut self.buffers[self.slot[self.input]].get_mut()[origin..],
            plane: st.c,
            row: st.y,
        }
    }

    /// The outputs' names and element counts.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, usize)> {
        self.outputs.iter().map(|(n, _, len)| (n.as_str(), *len))
    }

    /// The output named `name` (row-major, the graph's shape) from the last run.
    pub fn output_named(&self, name: &str) -> Option<&[f32]> {
        let (_, v, len) = self.outputs.iter().find(|o| o.0 == name)?;
        Some(&self.buffers[self.slot[*v]].get()[..*len])
    }

    /// The first output with `len` elements from the last run.
    pub fn output(&self, len: usize) -> Option<&[f32]> {
        let (_, v, _) = self.outputs.iter().find(|o| o.2 == len)?;
        Some(&self.buffers[self.slot[*v]].get()[..len])
    }

    pub fn run(&mut self) {
        self.run_timed(None);
    }

    /// Runs `runs` times and returns each step's name and mean time in ms, in order.
    pub fn profile(&mut self, runs: usize) -> Vec<(String, f64)> {
        let mut ms = vec![0.0; self.steps.len()];
        for _ in 0..runs {
            self.run_timed(Some(&mut ms));
        }
        self.steps
            .iter()
            .zip(ms)
            .map(|(s, t)| (s.describe(), t / runs.max(1) as f64))
            .collect()
    }

    fn run_timed(&mut self, mut times: Option<&mut [f64]>) {
        let isa = self.isa;
        for (i, step) in self.steps.iter().enumerate() {
            let started = times.is_some().then(std::time::Instant::now);
            let w = self.slot[step.writes()];
            let buffers = self.buffers.as_mut_ptr();
            let read = |v: ValueId| -> &[f32] {
                let r = self.slot[v];
                assert_ne!(r, w, "a step reads the buffer it writes");
                // SAFETY: `r` is a valid index and differs from `w`, the only buffer borrowed
                // mutably below.
                unsafe { (*buffers.add(r)).get() }
            };
            // SAFETY: `w` is a valid index; no other reference to that buffer exists.
            let out = unsafe { (*buffers.add(w)).get_mut() };
            exec(isa, step, out, read);
            if let (Some(t), Some(started)) = (times.as_deref_mut(), started) {
                t[i] += started.elapsed().as_secs_f64() * 1e3;
            }
        }
    }
}

fn exec<'a>(isa: Isa, step: &Step, out: &mut [f32], read: impl Fn(ValueId) -> &'a [f32]) {
    match step {
        Step::Pointwise {
            src,
            dst,
            weights,
            bias,
            act,
            residual,
        } => kernels::gemm(
            isa,
            &mut kernels::Gemm {
                a: read(src.v),
                lda: src.cp,
                rows: dst.h * dst.w,
                cols: None,
                b: weights,
                bias,
                act: act.get(),
                residual: residual.map(|r| (read(r.v), r.cp, r.cp)),
                out,
                ldo: dst.cp,
            },
        ),
        Step::Full {
            input,
            strides: st,
            stride,
            cols,
            dst,
            weights,
            bias,
            act,
            residual,
        } => {
            let a = read(*input);
            let res = residual.map(|r| (read(r.v), r.cp));
            for oy in 0..dst.h {
                kernels::gemm(
                    isa,
                    &mut kernels::Gemm {
                        a: &a[oy * stride * st.y..],
                        lda: stride * st.x,
                        rows: dst.w,
                        cols: Some(cols),
                        b: weights,
                        bias,
                        act: act.get(),
                        residual: res.map(|(r, cp)| (&r[oy * dst.w * cp..], cp, cp)),
                        out: &mut out[oy * dst.w * dst.cp..],
                        ldo: dst.cp,
                    },
                );
            }
        }
        Step::Place {
            src,
            strides,
            origin,
            ..
        } => kernels::place(&mut kernels::Place {
            input: read(src.v),
            strides: src.strides(),
            h: src.h,
            w: src.w,
            c: src.c,
            out,
            out_strides: *strides,
            origin: *origin,
        }),
        Step::Depthwise {
            src,
            win,
            weights,
            bias,
            act,
            ..
        } => kernels::depthwise(
            isa,
            &mut kernels::Depthwise {
                input: read(src.v),
                win: *win,
                weights,
                bias,
                act: act.get(),
                out,
            },
        ),
        Step::MaxPool { src, win, .. } => kernels::max_pool(
            isa,
            &mut kernels::MaxPool {
                input: read(src.v),
                win: *win,
                out,
            },
        ),
        Step::Add { a, b, dst } => {
            let n = dst.h * dst.w * dst.cp;
            let (a, b) = (&read(a.v)[..n], &read(b.v)[..n]);
            for ((o, x), y) in out[..n].iter_mut().zip(a).zip(b) {
                *o = x + y;
            }
        }
        Step::Activation { src, dst, act } => {
            let n = dst.h * dst.w * dst.cp;
            let x = &read(src.v)[..n];
            match act {
                ActSpec::Linear => out[..n].copy_from_slice(x),
                ActSpec::Relu => {
                    for (o, x) in out[..n].iter_mut().zip(x) {
                        *o = x.max(0.0);
                    }
                }
                ActSpec::PRelu(s) => {
                    for (o, x) in out[..n]
                        .chunks_exact_mut(dst.cp)
                        .zip(x.chunks_exact(dst.cp))
                    {
                        for ((o, x), s) in o.iter_mut().zip(x).zip(s) {
                            *o = x.max(0.0) + s * x.min(0.0);
                        }
                    }
                }
            }
        }
        Step::Widen { src, dst } => {
            let (x, st, stored) = (read(src.v), src.strides(), src.stored());
            for y in 0..src.h {
                for xx in 0..src.w {
                    let o = &mut out[(y * src.w + xx) * dst.cp..][..dst.cp];
                    for (c, v) in o.iter_mut().enumerate() {
                        *v = if c < stored {
                            x[c * st.c + y * st.y + xx * st.x]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        Step::Flatten { src, nhwc, .. } => {
            let (x, st, stored) = (read(src.v), src.strides(), src.stored());
            let (h, w, c) = (src.h, src.w, src.c);
            for ch in 0..c {
                for y in 0..h {
                    for xx in 0..w {
                        let i = if *nhwc {
                            (y * w + xx) * c + ch
                        } else {
                            (ch * h + y) * w + xx
                        };
                        out[i] = if ch < stored {
                            x[ch * st.c + y * st.y + xx * st.x]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        Step::Concat { srcs, outer, .. } => {
            let total: usize = srcs.iter().map(|s| s.1).sum();
            let mut off = 0;
            for &(v, chunk) in srcs {
                let x = read(v);
                for o in 0..*outer {
                    out[o * total + off..][..chunk].copy_from_slice(&x[o * chunk..][..chunk]);
                }
                off += chunk;
            }
        }
    }
}

/// A Conv node with the Add and activation that follow it and are computed with it.
#[derive(Clone, Copy, Debug)]
struct Fused {
    conv: usize,
    add: Option<usize>,
    act: Option<usize>,
}

struct Builder<'g> {
    graph: &'g GraphProto,
    isa: Isa,
    consts: HashMap<String, Const>,
    vals: HashMap<String, Val>,
    /// Size in floats of each value's buffer.
    sizes: Vec<usize>,
    steps: Vec<Step>,
    /// Values that get a buffer of their own, zeroed, never reused (zero borders).
    bordered: HashSet<ValueId>,
}

fn unsupported<T>(node: &NodeProto, what: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{} node {:?}: {what}", node.op_type, node.name))
}

impl<'g> Builder<'g> {
    fn new(graph: &'g GraphProto, isa: Isa) -> Result<Self, String> {
        Ok(Builder {
            graph,
            isa,
            consts: onnx::constants(graph)?,
            vals: HashMap::new(),
            sizes: Vec::new(),
            steps: Vec::new(),
            bordered: HashSet::new(),
        })
    }

    fn value(&mut self, floats: usize) -> ValueId {
        self.sizes.push(floats);
        self.sizes.len() - 1
    }

    fn spatial(&mut self, c: usize, h: usize, w: usize) -> Spatial {
        let cp = padded(c);
        Spatial {
            v: self.value((h * w + ROW_SLACK) * cp),
            c,
            cp,
            h,
            w,
            nchw: false,
        }
    }

    fn val(&self, node: &NodeProto, i: usize) -> Result<Val, String> {
        let name = node
            .input
            .get(i)
            .ok_or_else(|| format!("{} lacks input {i}", node.name))?;
        self.vals.get(name).cloned().ok_or_else(|| {
            format!(
                "{} node {:?}: input {name} is not a computed value",
                node.op_type, node.name
            )
        })
    }

    fn spatial_in(&self, node: &NodeProto, i: usize) -> Result<Spatial, String> {
        match self.val(node, i)? {
            Val::Spatial(s) => Ok(s),
            Val::Flat { .. } => unsupported(node, "input is not a 4-D feature map"),
        }
    }

    fn f32_const(&self, node: &NodeProto, i: usize) -> Result<(&[usize], &[f32]), String> {
        match node.input.get(i).and_then(|n| self.consts.get(n)) {
            Some(Const::F32 { dims, data }) => Ok((dims, data)),
            _ => unsupported(node, format!("input {i} is not a float constant")),
        }
    }

    fn i64_const(&self, node: &NodeProto, i: usize) -> Result<&[i64], String> {
        match node.input.get(i).and_then(|n| self.consts.get(n)) {
            Some(Const::I64 { data }) => Ok(data),
            _ => unsupported(node, format!("input {i} is not an int64 constant")),
        }
    }

    /// `s` as plain NHWC, copying when it is not.
    fn plain(&mut self, s: Spatial) -> Spatial {
        if s.is_plain() {
            return s;
        }
        let dst = self.spatial(s.c, s.h, s.w);
        self.steps.push(Step::Widen { src: s, dst });
        dst
    }

    /// `v` as row-major values with its ONNX shape.
    fn flat(&mut self, v: Val) -> (ValueId, Vec<usize>) {
        match v {
            Val::Flat { v, shape } => (v, shape),
            Val::Spatial(s) => {
                let dst = self.value(s.c * s.h * s.w);
                self.steps.push(Step::Flatten {
                    src: s,
                    dst,
                    nhwc: false,
                });
                (dst, vec![1, s.c, s.h, s.w])
            }
        }
    }

    /// The `Relu` or `PRelu` node's activation for a map of `c` channels padded to `cp`.
    fn activation(&self, node: &NodeProto, c: usize, cp: usize) -> Result<ActSpec, String> {
        match node.op_type.as_str() {
            "Relu" => Ok(ActSpec::Relu),
            "PRelu" => {
                let (dims, s) = self.f32_const(node, 1)?;
                // One slope, or one per channel ([C, 1, 1] after leading 1s, as NCHW
                // broadcasting puts it): anything else broadcasts along other axes.
                let leading = dims.iter().take_while(|&&d| d == 1).count();
                let per_channel = dims[leading.min(dims.len())..] == [c, 1, 1];
                if s.len() != 1 && !per_channel {
                    return unsupported(node, format!("slopes of shape {dims:?} for {c} channels"));
                }
                Ok(ActSpec::PRelu(
                    (0..cp)
                        .map(|ch| match s.len() {
                            1 => s[0],
                            _ if ch < c => s[ch],
                            _ => 0.0,
                        })
                        .collect(),
                ))
            }
            _ => unsupported(node, "not an activation"),
        }
    }

    fn build(mut self, input: [usize; 4], keep: &[&str]) -> Result<Engine, String> {
        let graph = self.graph;
        let input_name = graph
            .input
            .iter()
            .map(|i| &i.name)
            .find(|n| !self.consts.contains_key(*n))
            .ok_or("the model has no input")?
            .clone();
        let [n, c, h, w] = input;
        if n != 1 || c != 3 || h == 0 || w == 0 {
            return Err(format!("input shape {input:?}: one RGB image expected"));
        }
        let input_v = self.value(c * h * w);
        self.vals.insert(
            input_name,
            Val::Spatial(Spatial {
                v: input_v,
                c,
                cp: c,
                h,
                w,
                nchw: true,
            }),
        );
        let outputs: Vec<String> = graph
            .output
            .iter()
            .map(|o| o.name.clone())
            .filter(|o| keep.is_empty() || keep.contains(&o.as_str()))
            .collect();
        for k in keep {
            if !outputs.iter().any(|o| o == k) {
                return Err(format!("the model has no output named {k}"));
            }
        }
        if outputs.is_empty() {
            return Err("the model has no output".into());
        }
        let needed = onnx::needed_nodes(graph, &outputs);
        let groups = self.fusion(&needed, &outputs);
        let mut ends: HashMap<usize, Fused> = HashMap::new();
        let mut absorbed = HashSet::new();
        for g in &groups {
            let last = g.act.or(g.add).unwrap_or(g.conv);
            ends.insert(last, *g);
            absorbed.extend([Some(g.conv), g.add, g.act].into_iter().flatten());
        }
        for &i in &needed {
            let node = &graph.node[i];
            if let Some(g) = ends.get(&i) {
                self.conv(*g)?;
            } else if !absorbed.contains(&i) {
                self.node(node)?;
            }
        }
        let mut outs = Vec::new();
        for name in &outputs {
            let v = self
                .vals
                .get(name)
                .cloned()
                .ok_or_else(|| format!("output {name} is not computed"))?;
            let (v, shape) = self.flat(v);
            outs.push((name.clone(), v, shape.iter().product()));
        }
        if self.sizes.iter().any(|&s| s > MAX_FLOATS) {
            return Err(format!("a tensor larger than {MAX_FLOATS} values"));
        }
        // Each is at most MAX_FLOATS now: the sum cannot overflow.
        let total: usize = self.sizes.iter().sum();
        if total > MAX_TOTAL_FLOATS {
            return Err(format!(
                "tensors of {total} values together (at most {MAX_TOTAL_FLOATS})"
            ));
        }
        // When a bordered copy of the input is all that reads it, the caller writes the input
        // straight into that copy.
        let mut input = (
            input_v,
            Strides {
                c: h * w,
                y: w,
                x: 1,
            },
            0,
        );
        let readers: Vec<usize> = (0..self.steps.len())
            .filter(|&i| self.steps[i].reads().contains(&input_v))
            .collect();
        if let [only] = readers[..]
            && let Step::Place {
                dst,
                strides,
                origin,
                ..
            } = self.steps[only]
            && strides.x == 1
        {
            input = (dst, strides, origin);
            self.steps.remove(only);
        }
        Ok(self.allocate(input, outs))
    }

    /// Finds each Conv's following Add (whose other input becomes the residual) and
    /// Relu/PRelu, when nothing else reads the values in between.
    fn fusion(&self, needed: &[usize], outputs: &[String]) -> Vec<Fused> {
        let graph = self.graph;
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in needed {
            for input in &graph.node[i].input {
                readers.entry(input.as_str()).or_default().push(i);
            }
        }
        let only_reader = |name: &str| -> Option<usize> {
            if outputs.iter().any(|o| o == name) {
                return None;
            }
            match readers.get(name).map(Vec::as_slice) {
                Some([r]) => Some(*r),
                _ => None,
            }
        };
        let is_act = |i: usize| {
            let n = &graph.node[i];
            n.op_type == "Relu" || (n.op_type == "PRelu" && n.input.len() == 2)
        };
        let mut groups = Vec::new();
        // An Add two convolutions feed goes with the first; the second runs on its own.
        let mut claimed = HashSet::new();
        for &i in needed {
            let node = &graph.node[i];
            if node.op_type != "Conv" || node.output.len() != 1 {
                continue;
            }
            let depthwise = Attrs(node).int("group", 1) != 1;
            let mut g = Fused {
                conv: i,
                add: None,
                act: None,
            };
            let mut last = &node.output[0];
            if let Some(r) = only_reader(last) {
                let n = &graph.node[r];
                if !depthwise
                    && n.op_type == "Add"
                    && n.input.len() == 2
                    && n.input[0] != n.input[1]
                    && n.output.len() == 1
                    && claimed.insert(r)
                {
                    g.add = Some(r);
                    last = &n.output[0];
                }
            }
            if let Some(r) = only_reader(last).filter(|&r| is_act(r)) {
                g.act = Some(r);
            }
            groups.push(g);
        }
        groups
    }

    fn conv(&mut self, g: Fused) -> Result<(), String> {
        let graph = self.graph;
        let node = &graph.node[g.conv];
        let a = Attrs(node);
        for name in a.names() {
            if ![
                "auto_pad",
                "dilations",
                "group",
                "kernel_shape",
                "pads",
                "strides",
            ]
            .contains(&name)
            {
                return unsupported(node, format!("attribute {name}"));
            }
        }
        if a.ints("dilations")
            .is_some_and(|d| d.iter().any(|&d| d != 1))
        {
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
        if a.ints("kernel_shape")
            .is_some_and(|k| k != [kh as i64, kw as i64])
        {
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
        let ay = onnx::window(&auto_pad, src.h, kh, stride, (pt as usize, pb as usize))
            .or_else(|e| unsupported(node, e))?;
        let ax = onnx::window(&auto_pad, src.w, kw, stride, (pl as usize, pr as usize))
            .or_else(|e| unsupported(node, e))?;
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
                if r.nchw || r.c != co || r.h != dst.h || r.w != dst.w || r.cp > cp {
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
                Step::Pointwise {
                    src,
                    dst,
                    weights,
                    bias,
                    act,
                    residual,
                }
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
                let (input, strides) =
                    if inside && !src.nchw && ay.pad_begin == 0 && ax.pad_begin == 0 {
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
                            Strides {
                                c: hp * wp,
                                y: wp,
                                x: 1,
                            }
                        } else {
                            Strides {
                                c: 1,
                                y: wp * src.cp,
                                x: src.cp,
                            }
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
                Step::Full {
                    input,
                    strides,
                    stride,
                    cols: cols(strides),
                    dst,
                    weights,
                    bias,
                    act,
                    residual,
                }
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
            Step::Depthwise {
                src,
                dst,
                win: sliding(&src, &dst, kh, stride, (ay, ax)),
                weights,
                bias,
                act,
            }
        } else {
            return unsupported(node, format!("group {group}"));
        };
        self.steps.push(step);
        self.vals
            .insert(graph.node[last].output[0].clone(), Val::Spatial(dst));
        Ok(())
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), String> {
        let out = node.output.first().ok_or("a node without output")?.clone();
        let a = Attrs(node);
        let val = match node.op_type.as_str() {
            "Constant" => return Ok(()),
            "Relu" | "PRelu" => {
                let src = self.spatial_in(node, 0)?;
                let src = self.plain(src);
                let dst = self.spatial(src.c, src.h, src.w);
                let act = self.activation(node, src.c, src.cp)?;
                self.steps.push(Step::Activation { src, dst, act });
                Val::Spatial(dst)
            }
            "Add" => {
                let (x, y) = (self.spatial_in(node, 0)?, self.spatial_in(node, 1)?);
                if (x.c, x.h, x.w) != (y.c, y.h, y.w) {
                    return unsupported(node, "operands of different shapes");
                }
                let (x, y) = (self.plain(x), self.plain(y));
                let dst = self.spatial(x.c, x.h, x.w);
                self.steps.push(Step::Add { a: x, b: y, dst });
                Val::Spatial(dst)
            }
            "MaxPool" => {
                for name in a.names() {
                    if ![
                        "auto_pad",
                        "ceil_mode",
                        "dilations",
                        "kernel_shape",
                        "pads",
                        "strides",
                        "storage_order",
                    ]
                    .contains(&name)
                    {
                        return unsupported(node, format!("attribute {name}"));
                    }
                }
                if a.int("ceil_mode", 0) != 0
                    || a.ints("dilations")
                        .is_some_and(|d| d.iter().any(|&d| d != 1))
                {
                    return unsupported(node, "ceil_mode or dilation");
                }
                let src = self.spatial_in(node, 0)?;
                let src = self.plain(src);
                let k = a.ints("kernel_shape").unwrap_or_default();
                let strides = a.ints("strides").unwrap_or(vec![1, 1]);
                let pads = a.ints("pads").unwrap_or(vec![0; 4]);
                let (&[ky, kx], &[sy, sx], &[pt, pl, pb, pr]) =
                    (k.as_slice(), strides.as_slice(), pads.as_slice())
                else {
                    return unsupported(node, "kernel, strides or pads are not 2-D");
                };
                if ky != kx
                    || sy != sx
                    || ky <= 0
                    || sy <= 0
                    || [pt, pl, pb, pr].iter().any(|&p| p < 0)
                {
                    return unsupported(node, "non-square window");
                }
                let (k, s) = (ky as usize, sy as usize);
                let auto_pad = a.string("auto_pad").unwrap_or_default();
                let ay = onnx::window(&auto_pad, src.h, k, s, (pt as usize, pb as usize))
                    .or_else(|e| unsupported(node, e))?;
                let ax = onnx::window(&auto_pad, src.w, k, s, (pl as usize, pr as usize))
                    .or_else(|e| unsupported(node, e))?;
                let dst = self.spatial(src.c, ay.out, ax.out);
                self.steps.push(Step::MaxPool {
                    src,
                    dst,
                    win: sliding(&src, &dst, k, s, (ay, ax)),
                });
                Val::Spatial(dst)
            }
            "Pad" => {
                let src = self.spatial_in(node, 0)?;
                let mode = a.string("mode").unwrap_or_else(|| "constant".into());
                let pads = match a.ints("pads") {
                    Some(p) => p,
                    None => self.i64_const(node, 1)?.to_vec(),
                };
                if node.input.len() > 2 && !node.input[2].is_empty() {
                    let (_, v) = self.f32_const(node, 2)?;
                    if v.iter().any(|&v| v != 0.0) {
                        return unsupported(node, "non-zero padding value");
                    }
                }
                let &[0, 0, 0, 0, 0, extra, 0, 0] = pads.as_slice() else {
                    return unsupported(node, format!("pads {pads:?} (only extra channels)"));
                };
                if mode != "constant" || extra < 0 || src.nchw {
                    return unsupported(node, "mode");
                }
                // The extra channels are zeros: the same memory, read as more channels.
                Val::Spatial(Spatial {
                    c: src.c + extra as usize,
                    ..src
                })
            }
            "Transpose" => {
                let src = self.spatial_in(node, 0)?;
                if a.ints("perm").as_deref() != Some(&[0, 2, 3, 1]) {
                    return unsupported(node, "only NCHW -> NHWC");
                }
                let dst = self.value(src.c * src.h * src.w);
                self.steps.push(Step::Flatten {
                    src,
                    dst,
                    nhwc: true,
                });
                Val::Flat {
                    v: dst,
                    shape: vec![1, src.h, src.w, src.c],
                }
            }
            "Reshape" => {
                let v = self.val(node, 0)?;
                let spec = self.i64_const(node, 1)?.to_vec();
                let (v, shape) = self.flat(v);
                let shape = reshape(&shape, &spec).or_else(|e| unsupported(node, e))?;
                Val::Flat { v, shape }
            }
            "Concat" => {
                let mut parts = Vec::new();
                for i in 0..node.input.len() {
                    let v = self.val(node, i)?;
                    parts.push(self.flat(v));
                }
                let rank = parts[0].1.len() as i64;
                let axis = a.int("axis", 0);
                let axis = if axis < 0 { axis + rank } else { axis };
                if !(0..rank).contains(&axis) {
                    return unsupported(node, "axis");
                }
                let axis = axis as usize;
                let mut shape = parts[0].1.clone();
                shape[axis] = 0;
                for (_, s) in &parts {
                    if s.len() != shape.len()
                        || s.iter()
                            .zip(&shape)
                            .enumerate()
                            .any(|(d, (x, y))| d != axis && x != y)
                    {
                        return unsupported(node, "inputs of different shapes");
                    }
                    shape[axis] += s[axis];
                }
                let outer: usize = shape[..axis].iter().product();
                let srcs = parts
                    .iter()
                    .map(|(v, s)| (*v, s[axis..].iter().product()))
                    .collect();
                let dst = self.value(shape.iter().product());
                self.steps.push(Step::Concat { srcs, dst, outer });
                Val::Flat { v: dst, shape }
            }
            other => return unsupported(node, format!("op {other}")),
        };
        self.vals.insert(out, val);
        Ok(())
    }

    /// Gives each value a buffer: a buffer is reused once the last step reading its value ran.
    fn allocate(
        self,
        (input, strides, origin): (ValueId, Strides, usize),
        outputs: Vec<(String, ValueId, usize)>,
    ) -> Engine {
        let n = self.sizes.len();
        let mut last_read = vec![0usize; n];
        for (i, s) in self.steps.iter().enumerate() {
            for r in s.reads() {
                last_read[r] = last_read[r].max(i);
            }
        }
        let keep: HashSet<ValueId> = outputs.iter().map(|o| o.1).chain([input]).collect();
        let mut buffers: Vec<Buffer> = Vec::new();
        let mut sizes: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut slot = vec![usize::MAX; n];
        let take = |size: usize, free: &mut Vec<usize>, sizes: &mut Vec<usize>| -> usize {
            // The smallest free buffer that fits, else the largest grown, else a new one.
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, b)| sizes[**b] >= size)
                .min_by_key(|(_, b)| sizes[**b])
                .or_else(|| free.iter().enumerate().max_by_key(|(_, b)| sizes[**b]))
                .map(|(i, _)| i);
            match fit {
                Some(i) => {
                    let b = free.swap_remove(i);
                    sizes[b] = sizes[b].max(size);
                    b
                }
                None => {
                    sizes.push(size);
                    sizes.len() - 1
                }
            }
        };
        if self.bordered.contains(&input) {
            sizes.push(self.sizes[input]);
            slot[input] = sizes.len() - 1;
        } else {
            slot[input] = take(self.sizes[input], &mut free, &mut sizes);
        }
        for (i, s) in self.steps.iter().enumerate() {
            let w = s.writes();
            if slot[w] == usize::MAX {
                slot[w] = if self.bordered.contains(&w) {
                    sizes.push(self.sizes[w]);
                    sizes.len() - 1
                } else {
                    take(self.sizes[w], &mut free, &mut sizes)
                };
            }
            for r in s.reads() {
                let kept = keep.contains(&r) || self.bordered.contains(&r);
                if last_read[r] == i && !kept && !free.contains(&slot[r]) {
                    free.push(slot[r]);
                }
            }
        }
        for size in &sizes {
            buffers.push(Buffer::new(*size));
        }
        Engine {
            isa: self.isa,
            steps: self.steps,
            buffers,
            slot,
            input,
            input_view: (strides, origin),
            outputs,
        }
    }
}

/// The window of a depthwise convolution or max pool from `src` to `dst` (same channels).
fn sliding(
    src: &Spatial,
    dst: &Spatial,
    k: usize,
    stride: usize,
    (y, x): (onnx::Axis, onnx::Axis),
) -> Window {
    debug_assert_eq!(src.cp, dst.cp);
    Window {
        h: src.h,
        w: src.w,
        cp: src.cp,
        k,
        stride,
        pad_top: y.pad_begin,
        pad_left: x.pad_begin,
        oh: dst.h,
        ow: dst.w,
    }
}

/// ONNX Reshape's target shape (0 copies the dimension, -1 takes the rest).
fn reshape(shape: &[usize], spec: &[i64]) -> Result<Vec<usize>, String> {
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        out.push(match d {
            0 => *shape.get(i).ok_or("0 past the input's rank")?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            d if d > 0 => d as usize,
            _ => return Err(format!("shape {spec:?}")),
        });
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("shape {spec:?} for {total} values"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("shape {spec:?} for {total} values"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
