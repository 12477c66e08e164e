//! The compute kernels of the engine, on NHWC tensors whose pixels hold their channels padded
//! with zeros to a multiple of [`CHANNEL_ALIGN`] (so every channel block is whole vectors).
//!
//! Each entry point checks its slices' bounds once, then runs a kernel compiled for the
//! instruction set picked at run time ([`Isa::detect`]).

#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Portable, Simd};

/// Channels of every tensor are padded with zeros to a multiple of this.
pub const CHANNEL_ALIGN: usize = 16;
/// Rows of slack every buffer has after its last pixel: GEMM tiles run past the last row.
pub const ROW_SLACK: usize = 12;

/// `c` rounded up to [`CHANNEL_ALIGN`].
pub fn padded(c: usize) -> usize {
    c.div_ceil(CHANNEL_ALIGN) * CHANNEL_ALIGN
}

/// The instruction set the kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    /// The best this CPU has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// The environment variable that lowers [`Isa::chosen`]: `avx2` or `portable`.
    pub const ENV: &'static str = "FACEMARK_ISA";

    /// What the engine runs with: [`Isa::detect`], or the lower instruction set named by
    /// [`Isa::ENV`] (to measure on an AVX-512 machine what AVX2 machines run).
    pub fn chosen() -> Isa {
        Isa::pick(std::env::var(Isa::ENV).ok().as_deref(), &Isa::available())
    }

    /// The set `requested` names when `available` has it, else the best available.
    pub fn pick(requested: Option<&str>, available: &[Isa]) -> Isa {
        let best = *available.last().unwrap_or(&Isa::Portable);
        let Some(requested) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
            return best;
        };
        available.iter().copied().find(|isa| isa.name().eq_ignore_ascii_case(requested)).unwrap_or(best)
    }

    /// Its name as in [`Isa::ENV`] (lower case).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Every instruction set this CPU can run (for tests that compare them).
    pub fn available() -> Vec<Isa> {
        match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => vec![Isa::Portable, Isa::Avx2, Isa::Avx512],
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => vec![Isa::Portable, Isa::Avx2],
            Isa::Portable => vec![Isa::Portable],
        }
    }

    /// The GEMM tile: (rows, output channels) computed at once, for `n` (padded) output channels
    /// and `rows` rows. The weights are packed in blocks of the second number.
    pub fn gemm_tile(self, n: usize, rows: usize) -> (usize, usize) {
        debug_assert!(n.is_multiple_of(CHANNEL_ALIGN));
        let wide = n.is_multiple_of(32);
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => match (rows < 4, wide) {
                (true, true) => (1, 32),
                (true, false) => (1, 16),
                (false, true) => (8, 32),
                (false, false) => (12, 16),
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (if rows < 4 { 1 } else { 6 }, 16),
            Isa::Portable => (if rows < 4 { 1 } else { 4 }, 16),
        }
    }
}

/// What follows the sum.
#[derive(Clone, Copy, Debug)]
pub enum Act<'a> {
    Linear,
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
    pub a: &'a [f32],
    pub lda: usize,
    pub rows: usize,
    /// Where column `kk` of a row is, relative to the row's start: `cols[kk]` (a convolution
    /// reading its input in place), or `kk` when `None` (a plain matrix).
    pub cols: Option<&'a [usize]>,
    /// Packed for the same isa and number of rows.
    pub b: &'a Packed,
    pub bias: &'a [f32],
    pub act: Act<'a>,
    /// Added before the activation: (values, row stride, channels it has; the rest count as 0).
    pub residual: Option<(&'a [f32], usize, usize)>,
    pub out: &'a mut [f32],
    pub ldo: usize,
}

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

/// The sliding `k x k` window of a depthwise convolution or a max pool over an NHWC map whose
/// pixels hold `cp` (padded) channels, in and out alike: `h x w` in, `oh x ow` out, with the
/// padding before the first row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub h: usize,
    pub w: usize,
    pub cp: usize,
    pub k: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
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

/// A depthwise convolution (one filter per channel).
pub struct Depthwise<'a> {
    pub input: &'a [f32],
    pub win: Window,
    /// `[k * k][cp]`.
    pub weights: &'a [f32],
    pub bias: &'a [f32],
    pub act: Act<'a>,
    pub out: &'a mut [f32],
}

/// Kernel sizes [`depthwise`] runs.
pub fn depthwise_supports(k: usize) -> bool {
    k == 3 || k == 5
}

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
                let edge = |ox: usize| {
                    let ix0 = (ox * s) as isize - pl;
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
                            let p = inp.add(iy as usize * row + ix as usize * cp + c);
                            acc = S::mul_add(S::load(p), wij, acc);
                        }
                    }
                    S::store(o.add(ox * cp), act.apply(acc));
                };
                for ox in (0..x_lo).chain(x_hi..ow) {
                    edge(ox);
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

/// Max pooling; padding never wins.
pub struct MaxPool<'a> {
    pub input: &'a [f32],
    pub win: Window,
    pub out: &'a mut [f32],
}

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

/// Where a tensor's values are: element (c, y, x) is at `c * c_stride + y * y_stride + x *
/// x_stride`. NHWC padded tensors have `c_stride == 1`; the model input is NCHW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strides {
    pub c: usize,
    pub y: usize,
    pub x: usize,
}

/// Copies a feature map (any strides) into a buffer with other strides, its value (0, 0, 0)
/// at `origin`: the zero-bordered buffer a padded convolution reads in place. Only the map's
/// values are written: the borders keep the zeros they were made with.
pub struct Place<'a> {
    pub input: &'a [f32],
    pub strides: Strides,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub out: &'a mut [f32],
    pub out_strides: Strides,
    pub origin: usize,
}

pub fn place(p: &mut Place) {
    let (st, os) = (p.strides, p.out_strides);
    let last = |s: Strides| (p.c - 1) * s.c + (p.h - 1) * s.y + (p.w - 1) * s.x;
    assert!(p.input.len() > last(st));
    assert!(p.out.len() > p.origin + last(os));
    for y in 0..p.h {
        if st.c == 1 && os.c == 1 {
            for x in 0..p.w {
                let (i, o) = (y * st.y + x * st.x, p.origin + y * os.y + x * os.x);
                p.out[o..o + p.c].copy_from_slice(&p.input[i..i + p.c]);
            }
        } else if st.x == 1 && os.x == 1 {
            for c in 0..p.c {
                let (i, o) = (c * st.c + y * st.y, p.origin + c * os.c + y * os.y);
                p.out[o..o + p.w].copy_from_slice(&p.input[i..i + p.w]);
            }
        } else {
            for c in 0..p.c {
                for x in 0..p.w {
                    p.out[p.origin + c * os.c + y * os.y + x * os.x] = p.input[c * st.c + y * st.y + x * st.x];
                }
            }
        }
    }
}

/// The [`Gemm::cols`] of a `kh x kw` convolution over `c` channels reading a buffer with
/// `strides`: column (ky, kx, c) of an output pixel's row is that far from the window's
/// top-left value.
pub fn conv_cols(kh: usize, kw: usize, c: usize, strides: Strides) -> Vec<usize> {
    let mut cols = Vec::with_capacity(kh * kw * c);
    for ky in 0..kh {
        for kx in 0..kw {
            for ch in 0..c {
                cols.push(ky * strides.y + kx * strides.x + ch * strides.c);
            }
        }
    }
    cols
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small deterministic pseudo-random sequence in [-1, 1] (no extra dependency).
    pub(in crate::core::cnn) fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "at {i}: {x} vs {y}");
        }
    }

    #[test]
    fn the_environment_lowers_the_instruction_set_never_raises_it() {
        assert_eq!(Isa::pick(None, &[Isa::Portable]), Isa::Portable);
        assert_eq!(Isa::pick(Some("portable"), &Isa::available()), Isa::Portable);
        #[cfg(target_arch = "x86_64")]
        {
            let all = [Isa::Portable, Isa::Avx2, Isa::Avx512];
            assert_eq!(Isa::pick(None, &all), Isa::Avx512);
            assert_eq!(Isa::pick(Some(""), &all), Isa::Avx512);
            assert_eq!(Isa::pick(Some(" AVX2 "), &all), Isa::Avx2);
            assert_eq!(Isa::pick(Some("sse9"), &all), Isa::Avx512);
            // A set this CPU lacks is not taken.
            assert_eq!(Isa::pick(Some("avx512"), &all[..2]), Isa::Avx2);
        }
        assert_eq!(*Isa::available().last().unwrap(), Isa::detect());
    }

    #[test]
    fn gemm_matches_the_definition_on_every_isa_and_tile() {
        for &isa in &Isa::available() {
            for (rows, k, n_real) in [(1, 288, 1404), (2, 7, 16), (37, 16, 16), (50, 24, 28), (9, 64, 96)] {
                for gather in [false, true] {
                    let np = padded(n_real);
                    let (mr, _) = isa.gemm_tile(np, rows);
                    let rr = rows.div_ceil(mr) * mr + ROW_SLACK;
                    // Gathering reads every other value of a row, from the second on.
                    let lda = 2 * k + 3;
                    let cols: Vec<usize> = (0..k).map(|kk| if gather { 2 * kk + 1 } else { kk }).collect();
                    let a = values(rr * lda, 1);
                    let w = values(k * n_real, 2);
                    let bias: Vec<f32> = (0..np).map(|c| if c < n_real { c as f32 * 0.01 } else { 0.0 }).collect();
                    let slopes = values(np, 3);
                    let res_c = padded(n_real / 2).min(np);
                    let res = values(rr * res_c, 4);
                    let b = Packed::new(isa, k, n_real, np, rows, |kk, c| w[kk * n_real + c]);
                    let mut out = vec![f32::NAN; rr * np];
                    gemm(
                        isa,
                        &mut Gemm {
                            a: &a,
                            lda,
                            rows,
                            cols: gather.then_some(&cols[..]),
                            b: &b,
                            bias: &bias,
                            act: Act::PRelu(&slopes),
                            residual: Some((&res, res_c, res_c)),
                            out: &mut out,
                            ldo: np,
                        },
                    );
                    let mut want = vec![0.0; rows * np];
                    for r in 0..rows {
                        for c in 0..np {
                            let mut s = bias[c];
                            if c < n_real {
                                for kk in 0..k {
                                    s += a[r * lda + cols[kk]] * w[kk * n_real + c];
                                }
                            }
                            if c < res_c {
                                s += res[r * res_c + c];
                            }
                            want[r * np + c] = s.max(0.0) + slopes[c] * s.min(0.0);
                        }
                    }
                    close(&out[..rows * np], &want);
                }
            }
        }
    }

    /// The definition, with Relu.
    fn naive_dw(win: &Window, input: &[f32], weights: &[f32], bias: &[f32]) -> Vec<f32> {
        let Window { h, w, cp, k, stride, pad_top, pad_left, oh, ow } = *win;
        let mut out = vec![0.0; oh * ow * cp];
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..cp {
                    let mut s = bias[c];
                    for i in 0..k {
                        for j in 0..k {
                            let iy = (oy * stride + i) as isize - pad_top as isize;
                            let ix = (ox * stride + j) as isize - pad_left as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                s += input[(iy as usize * w + ix as usize) * cp + c] * weights[(i * k + j) * cp + c];
                            }
                        }
                    }
                    out[(oy * ow + ox) * cp + c] = s.max(0.0);
                }
            }
        }
        out
    }

    #[test]
    fn depthwise_matches_the_definition_with_strides_and_padding() {
        for &isa in &Isa::available() {
            // (h, w, cp, k, stride, pad_top, pad_left, pad_bottom, pad_right)
            for (h, w, cp, k, s, pt, pl, pb, pr) in [
                (9, 7, 16, 3, 1, 1, 1, 1, 1),
                (8, 8, 32, 3, 2, 0, 0, 1, 1),
                (11, 6, 48, 5, 1, 2, 2, 2, 2),
                (10, 10, 16, 5, 2, 1, 2, 2, 1),
            ] {
                let oh = (h + pt + pb - k) / s + 1;
                let ow = (w + pl + pr - k) / s + 1;
                let input = values(h * w * cp, 5);
                let weights = values(k * k * cp, 6);
                let bias = values(cp, 7);
                let mut out = vec![f32::NAN; oh * ow * cp];
                let win = Window { h, w, cp, k, stride: s, pad_top: pt, pad_left: pl, oh, ow };
                depthwise(
                    isa,
                    &mut Depthwise {
                        input: &input,
                        win,
                        weights: &weights,
                        bias: &bias,
                        act: Act::Relu,
                        out: &mut out,
                    },
                );
                close(&out, &naive_dw(&win, &input, &weights, &bias));
            }
        }
    }

    #[test]
    fn max_pool_ignores_padding() {
        for &isa in &Isa::available() {
            let (h, w, cp) = (5, 5, 16);
            let input: Vec<f32> = values(h * w * cp, 8).iter().map(|v| v - 5.0).collect();
            let mut out = vec![0.0; 3 * 3 * cp];
            max_pool(
                isa,
                &mut MaxPool {
                    input: &input,
                    win: Window { h, w, cp, k: 2, stride: 2, pad_top: 0, pad_left: 0, oh: 3, ow: 3 },
                    out: &mut out,
                },
            );
            for oy in 0..3 {
                for ox in 0..3 {
                    for c in 0..cp {
                        let mut m = f32::NEG_INFINITY;
                        for y in oy * 2..(oy * 2 + 2).min(h) {
                            for x in ox * 2..(ox * 2 + 2).min(w) {
                                m = m.max(input[(y * w + x) * cp + c]);
                            }
                        }
                        assert_eq!(out[(oy * 3 + ox) * cp + c], m);
                    }
                }
            }
        }
    }

    #[test]
    fn place_puts_nchw_and_nhwc_maps_at_the_same_spot() {
        let (h, w, c) = (4, 5, 3);
        let nchw = values(c * h * w, 9);
        let cp = padded(c);
        let mut nhwc = vec![0.0; h * w * cp];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    nhwc[(y * w + x) * cp + ch] = nchw[(ch * h + y) * w + x];
                }
            }
        }
        let (wp, cs, top, left) = (8, 4, 1, 2);
        let nhwc_out = Strides { c: 1, y: wp * cs, x: cs };
        let run = |input: &[f32], strides, out_strides: Strides| {
            let mut out = vec![0.0; (h + 3) * wp * cs];
            place(&mut Place {
                input,
                strides,
                h,
                w,
                c,
                out: &mut out,
                out_strides,
                origin: top * out_strides.y + left * out_strides.x,
            });
            out
        };
        let nchw_in = Strides { c: h * w, y: w, x: 1 };
        let a = run(&nchw, nchw_in, nhwc_out);
        let b = run(&nhwc, Strides { c: 1, y: w * cp, x: cp }, nhwc_out);
        assert_eq!(a, b);
        // Planar out: the same values, plane after plane.
        let planar = run(&nchw, nchw_in, Strides { c: (h + 3) * wp, y: wp, x: 1 });
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let at = ((top + y) * wp + left + x) * cs + ch;
                    assert_eq!(planar[ch * (h + 3) * wp + (top + y) * wp + left + x], a[at]);
                }
            }
        }
        for (i, v) in a.iter().enumerate() {
            let (ch, px) = (i % cs, i / cs);
            let (y, x) = ((px / wp) as isize - top as isize, (px % wp) as isize - left as isize);
            let want = if ch < c && (0..h as isize).contains(&y) && (0..w as isize).contains(&x) {
                nchw[(ch * h + y as usize) * w + x as usize]
            } else {
                0.0
            };
            assert_eq!(*v, want, "at {i}");
        }
    }
}
