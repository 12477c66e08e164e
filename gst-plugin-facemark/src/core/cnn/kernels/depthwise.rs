//! The depthwise convolution kernel (one 3x3 or 5x5 filter per channel), a vector of channels
//! at a time.

use super::{Act, ActV, Isa, Window, check_act};
#[cfg(target_arch = "x86_64")]
use crate::core::cnn::simd::{Avx2, Avx512};
use crate::core::cnn::simd::{Portable, Simd};

/// A depthwise convolution (one filter per channel).
pub struct Depthwise<'a> {
    /// The NHWC input map, `win.h x win.w` pixels of `win.cp` channels.
    pub input: &'a [f32],
    /// The filter's window: size, stride, padding, and the maps' shapes.
    pub win: Window,
    /// `[k * k][cp]`.
    pub weights: &'a [f32],
    /// One value per (padded) channel, added to the sum.
    pub bias: &'a [f32],
    /// The activation applied after the bias.
    pub act: Act<'a>,
    /// The NHWC output map, `win.oh x win.ow` pixels of `win.cp` channels.
    pub out: &'a mut [f32],
}

/// Kernel sizes [`depthwise`] runs.
pub fn depthwise_supports(k: usize) -> bool {
    k == 3 || k == 5
}

/// Runs `d` with the kernel for `isa`. Panics on a kernel size [`depthwise_supports`] refuses or
/// slices too short for `d.win`.
pub fn depthwise(isa: Isa, d: &mut Depthwise) {
    let win = d.win;
    assert!(depthwise_supports(win.k));
    win.check(d.input, d.out);
    assert!(d.weights.len() >= win.k * win.k * win.cp && d.bias.len() >= win.cp);
    check_act(d.act, win.cp);
    // SAFETY: bounds checked above; each function only on a CPU with its features.
    unsafe {
        match (isa, win.k) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 3) => dw_avx512::<3>(d),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, _) => dw_avx512::<5>(d),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 3) => dw_avx2::<3>(d),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, _) => dw_avx2::<5>(d),
            (Isa::Portable, 3) => dw_impl::<Portable, 3>(d),
            (Isa::Portable, _) => dw_impl::<Portable, 5>(d),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dw_avx512<const K: usize>(d: &mut Depthwise) {
    unsafe { dw_impl::<Avx512, K>(d) }
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_avx2<const K: usize>(d: &mut Depthwise) {
    unsafe { dw_impl::<Avx2, K>(d) }
}

/// # Safety
/// The bounds [`depthwise`] checks.
#[inline(always)]
unsafe fn dw_impl<S: Simd, const K: usize>(d: &mut Depthwise) {
    let Window { cp, oh, ow, stride: s, .. } = d.win;
    let (h, w) = (d.win.h as isize, d.win.w as isize);
    let (pt, pl) = (d.win.pad_top as isize, d.win.pad_left as isize);
    let inp = d.input.as_ptr();
    let out = d.out.as_mut_ptr();
    let row = w as usize * cp;
    let mut c = 0;
    while c < cp {
        // SAFETY (whole block): every load is of a tap inside the input, checked by `depthwise`.
        unsafe {
            let mut wv = [[S::zero(); K]; K];
            for (i, wr) in wv.iter_mut().enumerate() {
                for (j, x) in wr.iter_mut().enumerate() {
                    *x = S::load(d.weights.as_ptr().add((i * K + j) * cp + c));
                }
            }
            let bias = S::load(d.bias.as_ptr().add(c));
            let act = ActV::<S>::at(d.act, c);
            for oy in 0..oh {
                let iy0 = (oy * s) as isize - pt;
                let rows_inside = iy0 >= 0 && iy0 + K as isize <= h;
                let o = out.add(oy * ow * cp + c);
                // Output columns whose window is inside the input: [x_lo, x_hi).
                let x_lo = if rows_inside { (pl as usize).div_ceil(s).min(ow) } else { ow };
                let x_hi = if rows_inside && w + pl >= K as isize {
                    ((w + pl - K as isize) as usize / s + 1).clamp(x_lo, ow)
                } else {
                    x_lo
                };
                for ox in (0..x_lo).chain(x_hi..ow) {
                    let acc = edge::<S, K>(d, &wv, bias, (iy0, (ox * s) as isize - pl), c);
                    S::store(o.add(ox * cp), act.apply(acc));
                }
                // Four pixels at a time: four independent sums keep the FMA units busy.
                const BLOCK: usize = 4;
                let mut ox = x_lo;
                while ox + BLOCK <= x_hi {
                    let p = inp.add(iy0 as usize * row + (ox * s - pl as usize) * cp + c);
                    let mut acc = [bias; BLOCK];
                    for (i, wr) in wv.iter().enumerate() {
                        for (j, &wij) in wr.iter().enumerate() {
                            for (q, a) in acc.iter_mut().enumerate() {
                                let x = S::load(p.add(i * row + (q * s + j) * cp));
                                *a = S::mul_add(x, wij, *a);
                            }
                        }
                    }
                    for (q, a) in acc.iter().enumerate() {
                        S::store(o.add((ox + q) * cp), act.apply(*a));
                    }
                    ox += BLOCK;
                }
                while ox < x_hi {
                    let p = inp.add(iy0 as usize * row + (ox * s - pl as usize) * cp + c);
                    let mut acc = bias;
                    for (i, wr) in wv.iter().enumerate() {
                        for (j, &wij) in wr.iter().enumerate() {
                            acc = S::mul_add(S::load(p.add(i * row + j * cp)), wij, acc);
                        }
                    }
                    S::store(o.add(ox * cp), act.apply(acc));
                    ox += 1;
                }
            }
        }
        c += S::W;
    }
}

/// The sum of one output pixel whose window reaches past the input (its taps outside read as
/// zero), before the activation: `wv` the filter, the window's top-left input pixel at
/// `(iy0, ix0)`, channel block `c`. A function, not a closure in [`dw_impl`]: a closure there
/// does not get the target features of the kernel it is inlined into.
///
/// # Safety
/// The bounds [`depthwise`] checks.
#[inline(always)]
unsafe fn edge<S: Simd, const K: usize>(
    d: &Depthwise,
    wv: &[[S::V; K]; K],
    bias: S::V,
    (iy0, ix0): (isize, isize),
    c: usize,
) -> S::V {
    let (h, w, cp) = (d.win.h as isize, d.win.w as isize, d.win.cp);
    let mut acc = bias;
    for (i, wr) in wv.iter().enumerate() {
        let iy = iy0 + i as isize;
        if iy < 0 || iy >= h {
            continue;
        }
        for (j, &wij) in wr.iter().enumerate() {
            let ix = ix0 + j as isize;
            if ix < 0 || ix >= w {
                continue;
            }
            // SAFETY: (iy, ix) is inside the input, whose bounds `depthwise` checked.
            let x = unsafe { S::load(d.input.as_ptr().add((iy as usize * w as usize + ix as usize) * cp + c)) };
            acc = S::mul_add(x, wij, acc);
        }
    }
    acc
}
