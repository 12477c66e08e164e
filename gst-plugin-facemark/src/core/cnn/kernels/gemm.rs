//! The GEMM kernel (1x1 convolutions over pixels, full convolutions over patches) with its
//! packed weights, the bias, a residual and the activation fused into the tile's stores.

use super::{Act, ActV, CHANNEL_ALIGN, Isa, check_act};
#[cfg(target_arch = "x86_64")]
use crate::core::cnn::simd::{Avx2, Avx512};
use crate::core::cnn::simd::{Portable, Simd};

/// A `k x n` weight matrix in the layout [`gemm`] reads: blocks of `block` output channels,
/// each `k` rows of the block width.
#[derive(Debug)]
pub struct Packed {
    data: Vec<f32>,
    /// Rows (the sum's length).
    k: usize,
    /// Output channels, padded to [`CHANNEL_ALIGN`].
    n: usize,
    block: usize,
}

impl Packed {
    /// Packs `w(k, n)` for `isa` and GEMMs of `rows` rows: `n` real output channels, padded with
    /// zeros to `np`.
    pub fn new(isa: Isa, k: usize, n: usize, np: usize, rows: usize, w: impl Fn(usize, usize) -> f32) -> Packed {
        let (_, block) = isa.gemm_tile(np, rows);
        let mut data = vec![0.0; k * np];
        for blk in 0..np / block {
            for kk in 0..k {
                for j in 0..block {
                    let col = blk * block + j;
                    if col < n {
                        data[(blk * k + kk) * block + j] = w(kk, col);
                    }
                }
            }
        }
        Packed { data, k, n: np, block }
    }
}

/// `out[r, c] = act(sum_k a[r, k] * b[k, c] + bias[c] + residual[r, c])` for `rows` rows and
/// the weights' `n` output channels. Matrices are row-major with the given row strides; up to
/// a tile of rows after `rows` is read and written (the buffers' slack).
pub struct Gemm<'a> {
    /// The left matrix: one row per output row (a pixel, or a patch's top-left value).
    pub a: &'a [f32],
    /// Distance between consecutive rows of `a`, in floats.
    pub lda: usize,
    /// Rows to compute (pixels of the output).
    pub rows: usize,
    /// Where column `kk` of a row is, relative to the row's start: `cols[kk]` (a convolution
    /// reading its input in place), or `kk` when `None` (a plain matrix).
    pub cols: Option<&'a [usize]>,
    /// Packed for the same isa and number of rows.
    pub b: &'a Packed,
    /// One value per (padded) output channel, added to the sum.
    pub bias: &'a [f32],
    /// The activation applied last.
    pub act: Act<'a>,
    /// Added before the activation: (values, row stride, channels it has; the rest count as 0).
    pub residual: Option<(&'a [f32], usize, usize)>,
    /// The result, `rows` rows of `n` channels.
    pub out: &'a mut [f32],
    /// Distance between consecutive rows of `out`, in floats (at least `n`).
    pub ldo: usize,
}

/// Computes `g` with the tile and kernel for `isa`. Panics when a slice is too short or `g.b`
/// was packed for another instruction set or row count.
pub fn gemm(isa: Isa, g: &mut Gemm) {
    let (k, n) = (g.b.k, g.b.n);
    let (mr, nb) = isa.gemm_tile(n, g.rows);
    assert_eq!(nb, g.b.block, "gemm: weights packed for another tile");
    let rows = g.rows.div_ceil(mr) * mr;
    assert!(k > 0 && rows > 0);
    let row_extent = match g.cols {
        Some(cols) => {
            assert_eq!(cols.len(), k, "gemm: one offset per column");
            cols.iter().max().map_or(0, |m| m + 1)
        }
        None => k,
    };
    assert!(g.a.len() >= (rows - 1) * g.lda + row_extent, "gemm: a too short");
    assert!(g.bias.len() >= n, "gemm: bias too short");
    assert!(g.ldo >= n && g.out.len() >= (rows - 1) * g.ldo + n, "gemm: out too short");
    if let Some((r, ld, c)) = g.residual {
        assert!(c.is_multiple_of(CHANNEL_ALIGN) && c <= n && ld >= c);
        assert!(r.len() >= (rows - 1) * ld + c, "gemm: residual too short");
    }
    check_act(g.act, n);
    // SAFETY: bounds checked above; each function is called only on a CPU with its features.
    unsafe {
        match (isa, mr, nb, g.cols.is_some()) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 8, 32, false) => gemm_avx512::<8, 2, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 8, 32, true) => gemm_avx512::<8, 2, true>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 12, 16, false) => gemm_avx512::<12, 1, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 12, 16, true) => gemm_avx512::<12, 1, true>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 1, 32, false) => gemm_avx512::<1, 2, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 1, 32, true) => gemm_avx512::<1, 2, true>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 1, 16, false) => gemm_avx512::<1, 1, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, 1, 16, true) => gemm_avx512::<1, 1, true>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 6, 16, false) => gemm_avx2::<6, 2, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 6, 16, true) => gemm_avx2::<6, 2, true>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 1, 16, false) => gemm_avx2::<1, 2, false>(g),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2, 1, 16, true) => gemm_avx2::<1, 2, true>(g),
            (Isa::Portable, 4, 16, false) => gemm_impl::<Portable, 4, 2, false>(g),
            (Isa::Portable, 4, 16, true) => gemm_impl::<Portable, 4, 2, true>(g),
            (Isa::Portable, 1, 16, false) => gemm_impl::<Portable, 1, 2, false>(g),
            (Isa::Portable, 1, 16, true) => gemm_impl::<Portable, 1, 2, true>(g),
            _ => unreachable!("no gemm kernel for {isa:?} {mr}x{nb}"),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemm_avx512<const MR: usize, const NV: usize, const COLS: bool>(g: &mut Gemm) {
    unsafe { gemm_impl::<Avx512, MR, NV, COLS>(g) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2<const MR: usize, const NV: usize, const COLS: bool>(g: &mut Gemm) {
    unsafe { gemm_impl::<Avx2, MR, NV, COLS>(g) }
}

/// # Safety
/// The bounds [`gemm`] checks, for a tile of `MR` rows and `NV` vectors; `COLS` when `g.cols`
/// is given.
// The tile loops index several arrays (accumulators, weights, bias) with the same counters.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
unsafe fn gemm_impl<S: Simd, const MR: usize, const NV: usize, const COLS: bool>(g: &mut Gemm) {
    let nb = NV * S::W;
    let (k, lda, ldo) = (g.b.k, g.lda, g.ldo);
    let a = g.a.as_ptr();
    let cols = g.cols.map_or(std::ptr::null(), <[usize]>::as_ptr);
    let out = g.out.as_mut_ptr();
    let residual = g.residual.map(|(r, ld, c)| (r.as_ptr(), ld, c));
    for blk in 0..g.b.n / nb {
        let c0 = blk * nb;
        // SAFETY (whole block): offsets stay within the lengths checked by `gemm`.
        unsafe {
            let b = g.b.data.as_ptr().add(blk * k * nb);
            let mut bias = [S::zero(); NV];
            let mut act = [ActV::<S>::Linear; NV];
            for v in 0..NV {
                bias[v] = S::load(g.bias.as_ptr().add(c0 + v * S::W));
                act[v] = ActV::at(g.act, c0 + v * S::W);
            }
            let mut r0 = 0;
            while r0 < g.rows {
                let ar = a.add(r0 * lda);
                let mut acc = [[S::zero(); NV]; MR];
                for kk in 0..k {
                    let col = if COLS { *cols.add(kk) } else { kk };
                    let mut bv = [S::zero(); NV];
                    for v in 0..NV {
                        bv[v] = S::load(b.add(kk * nb + v * S::W));
                    }
                    for m in 0..MR {
                        let x = S::splat(*ar.add(m * lda + col));
                        for v in 0..NV {
                            acc[m][v] = S::mul_add(x, bv[v], acc[m][v]);
                        }
                    }
                }
                for m in 0..MR {
                    let row = r0 + m;
                    for v in 0..NV {
                        let c = c0 + v * S::W;
                        let mut x = S::add(acc[m][v], bias[v]);
                        if let Some((r, ld, rc)) = residual
                            && c < rc
                        {
                            x = S::add(x, S::load(r.add(row * ld + c)));
                        }
                        S::store(out.add(row * ldo + c), act[v].apply(x));
                    }
                }
                r0 += MR;
            }
        }
    }
}
