//! The max pooling kernel, a vector of channels at a time.

use super::{Isa, Window};
#[cfg(target_arch = "x86_64")]
use crate::core::cnn::simd::{Avx2, Avx512};
use crate::core::cnn::simd::{Portable, Simd};

/// Max pooling; padding never wins.
pub struct MaxPool<'a> {
    /// The NHWC input map, `win.h x win.w` pixels of `win.cp` channels.
    pub input: &'a [f32],
    /// The pooling window: size, stride, padding, and the maps' shapes.
    pub win: Window,
    /// The NHWC output map, `win.oh x win.ow` pixels of `win.cp` channels.
    pub out: &'a mut [f32],
}

/// Runs `p` with the kernel for `isa`. Panics when a slice is too short for `p.win`.
pub fn max_pool(isa: Isa, p: &mut MaxPool) {
    p.win.check(p.input, p.out);
    // SAFETY: bounds checked above; each function only on a CPU with its features.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => max_pool_avx512(p),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => max_pool_avx2(p),
            Isa::Portable => max_pool_impl::<Portable>(p),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_pool_avx512(p: &mut MaxPool) {
    unsafe { max_pool_impl::<Avx512>(p) }
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_pool_avx2(p: &mut MaxPool) {
    unsafe { max_pool_impl::<Avx2>(p) }
}

/// # Safety
/// The bounds [`max_pool`] checks.
#[inline(always)]
unsafe fn max_pool_impl<S: Simd>(p: &mut MaxPool) {
    let Window { h, w, cp, k, stride, pad_top, pad_left, oh, ow } = p.win;
    for oy in 0..oh {
        let iy0 = (oy * stride) as isize - pad_top as isize;
        let ys = iy0.max(0) as usize..((iy0 + k as isize) as usize).min(h);
        for ox in 0..ow {
            let ix0 = (ox * stride) as isize - pad_left as isize;
            let xs = ix0.max(0) as usize..((ix0 + k as isize) as usize).min(w);
            let mut c = 0;
            while c < cp {
                // SAFETY: the window ranges are clamped to the input.
                unsafe {
                    let mut m = S::splat(f32::NEG_INFINITY);
                    for y in ys.clone() {
                        for x in xs.clone() {
                            m = S::max(m, S::load(p.input.as_ptr().add((y * w + x) * cp + c)));
                        }
                    }
                    S::store(p.out.as_mut_ptr().add((oy * ow + ox) * cp + c), m);
                }
                c += S::W;
            }
        }
    }
}
