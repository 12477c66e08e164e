//! The compute kernels of the engine, on NHWC tensors whose pixels hold their channels padded
//! with zeros to a multiple of [`CHANNEL_ALIGN`] (so every channel block is whole vectors).
//!
//! Each entry point checks its slices' bounds once, then runs a kernel compiled for the
//! instruction set picked at run time ([`Isa::detect`]). One file per kind of kernel: [`gemm()`]
//! (1x1 and full convolutions), [`depthwise()`], [`max_pool()`], and [`place()`] (copies between
//! layouts); this file holds what they share.

mod depthwise;
mod gemm;
mod isa;
mod place;
mod pool;
#[cfg(test)]
pub(super) mod tests;

pub use depthwise::{Depthwise, depthwise, depthwise_supports};
pub use gemm::{Gemm, Packed, gemm};
pub use isa::Isa;
pub use place::{Place, Strides, conv_cols, place};
pub use pool::{MaxPool, max_pool};

use super::simd::Simd;

/// Channels of every tensor are padded with zeros to a multiple of this.
pub const CHANNEL_ALIGN: usize = 16;
/// Rows of slack every buffer has after its last pixel: GEMM tiles run past the last row.
pub const ROW_SLACK: usize = 12;

/// `c` rounded up to [`CHANNEL_ALIGN`].
pub fn padded(c: usize) -> usize {
    c.div_ceil(CHANNEL_ALIGN) * CHANNEL_ALIGN
}

/// What follows the sum.
#[derive(Clone, Copy, Debug)]
pub enum Act<'a> {
    /// No activation: the sum as it is.
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `max(x, 0) + slope * min(x, 0)`, one slope per (padded) channel.
    PRelu(&'a [f32]),
}

/// An activation with its slopes loaded for one channel block.
#[derive(Clone, Copy)]
enum ActV<S: Simd> {
    Linear,
    Relu,
    PRelu(S::V),
}

impl<S: Simd> ActV<S> {
    /// # Safety
    /// For PRelu, `c + S::W` slopes must exist (checked by the entry points).
    #[inline(always)]
    unsafe fn at(act: Act, c: usize) -> Self {
        match act {
            Act::Linear => ActV::Linear,
            Act::Relu => ActV::Relu,
            Act::PRelu(s) => ActV::PRelu(unsafe { S::load(s.as_ptr().add(c)) }),
        }
    }

    #[inline(always)]
    fn apply(self, x: S::V) -> S::V {
        match self {
            ActV::Linear => x,
            ActV::Relu => S::max(x, S::zero()),
            ActV::PRelu(slope) => S::mul_add(slope, S::min(x, S::zero()), S::max(x, S::zero())),
        }
    }
}

fn check_act(act: Act, channels: usize) {
    if let Act::PRelu(s) = act {
        assert!(s.len() >= channels, "PRelu slopes for {channels} channels");
    }
}

/// The sliding `k x k` window of a depthwise convolution or a max pool over an NHWC map whose
/// pixels hold `cp` (padded) channels, in and out alike: `h x w` in, `oh x ow` out, with the
/// padding before the first row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Input rows.
    pub h: usize,
    /// Input columns.
    pub w: usize,
    /// Channels per pixel, padded to a multiple of [`CHANNEL_ALIGN`].
    pub cp: usize,
    /// Window side, in pixels.
    pub k: usize,
    /// Input pixels between consecutive windows, both ways.
    pub stride: usize,
    /// Padding rows above the input.
    pub pad_top: usize,
    /// Padding columns left of the input.
    pub pad_left: usize,
    /// Output rows.
    pub oh: usize,
    /// Output columns.
    pub ow: usize,
}

impl Window {
    /// The bounds the kernels rely on: whole channel blocks, maps that fit, and every output
    /// window touching the input (none wholly in the padding).
    fn check(&self, input: &[f32], out: &[f32]) {
        assert!(self.k > 0 && self.stride > 0 && self.cp.is_multiple_of(CHANNEL_ALIGN));
        assert!(input.len() >= self.h * self.w * self.cp);
        assert!(out.len() >= self.oh * self.ow * self.cp);
        assert!(self.oh > 0 && (self.oh - 1) * self.stride < self.h + self.pad_top);
        assert!(self.ow > 0 && (self.ow - 1) * self.stride < self.w + self.pad_left);
    }
}
