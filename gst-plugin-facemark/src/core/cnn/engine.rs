//! Running a compiled model: each step in turn over buffers allocated once.

use std::sync::Arc;

use tract_onnx::pb::ModelProto;

use super::super::image::Planes;
use super::builder::Builder;
use super::kernels::{self, Isa, Strides};
use super::{ActSpec, Step, ValueId};

/// A buffer of floats whose first element is 64-byte aligned.
pub(super) struct Buffer {
    data: Vec<f32>,
    off: usize,
    len: usize,
}

impl Buffer {
    pub(super) fn new(len: usize) -> Buffer {
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
    pub(super) isa: Isa,
    /// The steps and their weights: read only while running, so shared by [`Engine::instance`]s.
    pub(super) steps: Arc<[Step]>,
    pub(super) buffers: Vec<Buffer>,
    /// The buffer holding each value.
    pub(super) slot: Vec<usize>,
    pub(super) input: ValueId,
    /// The input's strides (x is 1) and where its value (0, 0, 0) is.
    pub(super) input_view: (Strides, usize),
    /// (name, value, element count) of each output, in the graph's order.
    pub(super) outputs: Vec<(String, ValueId, usize)>,
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
    pub fn build(model: &ModelProto, input: [usize; 4], keep: &[&str], isa: Isa) -> Result<Engine, String> {
        let graph = model.graph.as_ref().ok_or("the model has no graph")?;
        Builder::new(graph, isa)?.build(input, keep)
    }

    /// Another engine running the same steps, sharing their weights, with buffers of its own
    /// (as fresh as after [`Engine::build`]): for one more stream, without compiling again.
    pub fn instance(&self) -> Engine {
        Engine {
            isa: self.isa,
            steps: self.steps.clone(),
            buffers: self.buffers.iter().map(|b| Buffer::new(b.len)).collect(),
            slot: self.slot.clone(),
            input: self.input,
            input_view: self.input_view,
            outputs: self.outputs.clone(),
        }
    }

    /// The instruction set its kernels were compiled for (see [`Isa::chosen`]).
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The input image to fill before [`Engine::run`]: planar, NCHW or with the borders the
    /// first convolution reads.
    pub fn input(&mut self) -> Planes<'_> {
        let (st, origin) = self.input_view;
        Planes { data: &mut self.buffers[self.slot[self.input]].get_mut()[origin..], plane: st.c, row: st.y }
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

    /// Runs every step once on the image written through [`Engine::input`]; read the results with
    /// [`Engine::output`] or [`Engine::output_named`].
    pub fn run(&mut self) {
        self.run_timed(None);
    }

    /// Runs `runs` times and returns each step's name and mean time in ms, in order.
    pub fn profile(&mut self, runs: usize) -> Vec<(String, f64)> {
        let mut ms = vec![0.0; self.steps.len()];
        for _ in 0..runs {
            self.run_timed(Some(&mut ms));
        }
        self.steps.iter().zip(ms).map(|(s, t)| (s.describe(), t / runs.max(1) as f64)).collect()
    }

    fn run_timed(&mut self, mut times: Option<&mut [f64]>) {
        let isa = self.isa;
        for (i, step) in self.steps.iter().enumerate() {
            let started = times.is_some().then(std::time::Instant::now);
            let w = self.slot[step.writes()];
            let buffers = self.buffers.as_mut_ptr();
            let read = |v: ValueId| -> &[f32] {
                let r = self.slot[v];
                debug_assert_ne!(r, w, "a step reads the buffer it writes");
                // SAFETY: `r` is a valid index and differs from `w`, the only buffer borrowed
                // mutably below: `Builder::allocate` refused any plan where it would not.
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
        Step::Pointwise { src, dst, weights, bias, act, residual } => kernels::gemm(
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
        Step::Full { input, strides: st, stride, cols, dst, weights, bias, act, residual } => {
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
        Step::Place { src, strides, origin, .. } => kernels::place(&mut kernels::Place {
            input: read(src.v),
            strides: src.strides(),
            h: src.h,
            w: src.w,
            c: src.c,
            out,
            out_strides: *strides,
            origin: *origin,
        }),
        Step::Depthwise { src, win, weights, bias, act, .. } => kernels::depthwise(
            isa,
            &mut kernels::Depthwise { input: read(src.v), win: *win, weights, bias, act: act.get(), out },
        ),
        Step::MaxPool { src, win, .. } => {
            kernels::max_pool(isa, &mut kernels::MaxPool { input: read(src.v), win: *win, out })
        }
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
                    for (o, x) in out[..n].chunks_exact_mut(dst.cp).zip(x.chunks_exact(dst.cp)) {
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
                        *v = if c < stored { x[c * st.c + y * st.y + xx * st.x] } else { 0.0 };
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
                        let i = if *nhwc { (y * w + xx) * c + ch } else { (ch * h + y) * w + xx };
                        out[i] = if ch < stored { x[ch * st.c + y * st.y + xx * st.x] } else { 0.0 };
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
