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

mod builder;
mod engine;
pub mod kernels;
mod onnx;
mod simd;

pub use engine::Engine;
pub use kernels::Isa;
use kernels::{Act, Packed, Strides, Window, padded};

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
            Strides { c: self.h * self.w, y: self.w, x: 1 }
        } else {
            Strides { c: 1, y: self.w * self.cp, x: self.cp }
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
    Widen {
        src: Spatial,
        dst: Spatial,
    },
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
            Step::Pointwise { src, dst, residual, .. } => {
                format!("pointwise {}->{}{}", src.c, shape(dst), if residual.is_some() { " +res" } else { "" })
            }
            Step::Full { cols, stride, dst, .. } => {
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
            Step::Pointwise { src, residual, .. } => std::iter::once(src.v).chain(residual.map(|r| r.v)).collect(),
            Step::Full { input, residual, .. } => std::iter::once(*input).chain(residual.map(|r| r.v)).collect(),
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

#[cfg(test)]
mod tests;
