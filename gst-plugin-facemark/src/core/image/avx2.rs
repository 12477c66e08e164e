//! Bilinear sampling of 8 output pixels at once with AVX2 gathers: the model inputs are
//! 16K to 37K pixels a frame, and one at a time this was a third of a tracked frame's time.
//! Only blocks whose 2 x 2 source pixels are all inside the frame are done here; the caller
//! samples the others one by one ([`super::sample`]), with the same arithmetic.

use std::arch::x86_64::*;

/// One 8-bit plane to gather from: sample (x, y) starts at byte `y * stride + x * step`.
/// Every gather reads 4 bytes from a sample: [`Plane::new`] makes sure that stays in the plane.
#[derive(Clone, Copy)]
pub struct Plane {
    ptr: *const u8,
    stride: i32,
    step: i32,
    width: i32,
    /// 2 x 2 blocks must start above this row: the plane's height, or one less when a 4-byte
    /// read in the last row would pass the end of the data (those blocks go one by one).
    rows: i32,
}

impl Plane {
    /// `None` when the plane is too small, too large for 32-bit offsets, or too short for the
    /// reads of all but its last row.
    pub fn new(data: &[u8], stride: usize, step: usize, width: usize, height: usize) -> Option<Plane> {
        if width < 2 || height < 3 || data.len() > i32::MAX as usize {
            return None;
        }
        let read_end = |row: usize| row * stride + (width - 1) * step + 4;
        let rows = if read_end(height - 1) <= data.len() {
            height
        } else if read_end(height - 2) <= data.len() {
            height - 1
        } else {
            return None;
        };
        Some(Plane {
            ptr: data.as_ptr(),
            stride: stride as i32,
            step: step as i32,
            width: width as i32,
            rows: rows as i32,
        })
    }
}

/// The four 32-bit words at the 2 x 2 sample blocks under (x, y) (top-left, top-right,
/// bottom-left, bottom-right) and the fractional positions, or `None` when a block of a lane is
/// not wholly inside the plane.
///
/// # Safety
/// AVX2 and FMA must be available; `p` must come from [`Plane::new`] on live data.
#[inline(always)]
unsafe fn corners(p: &Plane, x: __m256, y: __m256) -> Option<([__m256i; 4], __m256, __m256)> {
    unsafe {
        let (xf, yf) = (_mm256_floor_ps(x), _mm256_floor_ps(y));
        // NaN and values out of i32's range convert to i32::MIN: outside.
        let (xi, yi) = (_mm256_cvttps_epi32(xf), _mm256_cvttps_epi32(yf));
        let minus1 = _mm256_set1_epi32(-1);
        let inside = _mm256_and_si256(
            _mm256_and_si256(_mm256_cmpgt_epi32(xi, minus1), _mm256_cmpgt_epi32(_mm256_set1_epi32(p.width - 1), xi)),
            _mm256_and_si256(_mm256_cmpgt_epi32(yi, minus1), _mm256_cmpgt_epi32(_mm256_set1_epi32(p.rows - 1), yi)),
        );
        if _mm256_movemask_epi8(inside) != -1 {
            return None;
        }
        let at = _mm256_add_epi32(
            _mm256_mullo_epi32(yi, _mm256_set1_epi32(p.stride)),
            _mm256_mullo_epi32(xi, _mm256_set1_epi32(p.step)),
        );
        let base = p.ptr as *const i32;
        let right = p.ptr.add(p.step as usize) as *const i32;
        let below = p.ptr.add(p.stride as usize) as *const i32;
        let below_right = p.ptr.add((p.stride + p.step) as usize) as *const i32;
        Some((
            [
                _mm256_i32gather_epi32::<1>(base, at),
                _mm256_i32gather_epi32::<1>(right, at),
                _mm256_i32gather_epi32::<1>(below, at),
                _mm256_i32gather_epi32::<1>(below_right, at),
            ],
            _mm256_sub_ps(x, xf),
            _mm256_sub_ps(y, yf),
        ))
    }
}

/// Byte `byte` (0..4) of each 32-bit word, as floats.
#[inline(always)]
unsafe fn byte_of(w: __m256i, shift: __m128i) -> __m256 {
    unsafe { _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(w, shift), _mm256_set1_epi32(0xFF))) }
}

/// Byte `byte` (0..4) of each word of the four corners, interpolated.
///
/// No closures in these functions: a closure does not inherit the caller's target features,
/// so the intrinsics in it would not be inlined.
#[inline(always)]
unsafe fn bilinear(q: &[__m256i; 4], byte: u32, fx: __m256, fy: __m256) -> __m256 {
    unsafe {
        let shift = _mm_cvtsi32_si128(8 * byte as i32);
        let (a, b) = (byte_of(q[0], shift), byte_of(q[1], shift));
        let (c, d) = (byte_of(q[2], shift), byte_of(q[3], shift));
        let top = _mm256_fmadd_ps(fx, _mm256_sub_ps(b, a), a);
        let bottom = _mm256_fmadd_ps(fx, _mm256_sub_ps(d, c), c);
        _mm256_fmadd_ps(fy, _mm256_sub_ps(bottom, top), top)
    }
}

/// The positions of 8 consecutive output pixels: `(x0, y0) + lane * (dx, dy)`.
#[inline(always)]
unsafe fn positions(x0: f32, y0: f32, dx: f32, dy: f32) -> (__m256, __m256) {
    unsafe {
        let lane = _mm256_setr_ps(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0);
        (
            _mm256_fmadd_ps(lane, _mm256_set1_ps(dx), _mm256_set1_ps(x0)),
            _mm256_fmadd_ps(lane, _mm256_set1_ps(dy), _mm256_set1_ps(y0)),
        )
    }
}

#[inline(always)]
unsafe fn store(v: __m256) -> [f32; 8] {
    let mut out = [0.0; 8];
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// R, G, B of 8 pixels from a packed plane (`rgb` the byte offsets in a pixel), times `scale`
/// plus `offset`.
///
/// # Safety
/// AVX2 and FMA must be available; `p` made by [`Plane::new`] on data that is still alive.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn packed8(
    p: &Plane,
    rgb: [usize; 3],
    (x0, y0, dx, dy): (f32, f32, f32, f32),
    scale: f32,
    offset: f32,
) -> Option<[[f32; 8]; 3]> {
    unsafe {
        let (x, y) = positions(x0, y0, dx, dy);
        let (q, fx, fy) = corners(p, x, y)?;
        let (scale, offset) = (_mm256_set1_ps(scale), _mm256_set1_ps(offset));
        let mut out = [[0.0; 8]; 3];
        for (o, byte) in out.iter_mut().zip(rgb) {
            *o = store(_mm256_fmadd_ps(bilinear(&q, byte as u32, fx, fy), scale, offset));
        }
        Some(out)
    }
}

/// The chroma planes of a 4:2:0 frame: separate U and V, or one with U, V pairs.
pub enum ChromaPlanes {
    /// I420: the U plane, then the V plane.
    Planar(Plane, Plane),
    /// NV12: one plane of U, V byte pairs.
    Interleaved(Plane),
}

/// R, G, B of 8 pixels of a 4:2:0 frame: Y, U, V interpolated on their own grids, then
/// converted with `to_rgb` (rows of R, G, B weights of Y - `y_black`, U - 128, V - 128),
/// clamped to 0..=255, times `scale` plus `offset`.
///
/// # Safety
/// As [`packed8`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn yuv8(
    luma: &Plane,
    chroma: &ChromaPlanes,
    (to_rgb, y_black): ([[f32; 3]; 3], f32),
    (x0, y0, dx, dy): (f32, f32, f32, f32),
    scale: f32,
    offset: f32,
) -> Option<[[f32; 8]; 3]> {
    unsafe {
        let (x, y) = positions(x0, y0, dx, dy);
        let (q, fx, fy) = corners(luma, x, y)?;
        let luma = bilinear(&q, 0, fx, fy);
        // A chroma sample covers 2 x 2 luma pixels and sits at their centre.
        let half = _mm256_set1_ps(0.5);
        let cx = _mm256_fmsub_ps(_mm256_add_ps(x, half), half, half);
        let cy = _mm256_fmsub_ps(_mm256_add_ps(y, half), half, half);
        let (u, v) = match chroma {
            ChromaPlanes::Planar(u, v) => {
                let (qu, fx, fy) = corners(u, cx, cy)?;
                let (qv, gx, gy) = corners(v, cx, cy)?;
                (bilinear(&qu, 0, fx, fy), bilinear(&qv, 0, gx, gy))
            }
            ChromaPlanes::Interleaved(uv) => {
                let (q, fx, fy) = corners(uv, cx, cy)?;
                (bilinear(&q, 0, fx, fy), bilinear(&q, 1, fx, fy))
            }
        };
        let yy = _mm256_sub_ps(luma, _mm256_set1_ps(y_black));
        let c128 = _mm256_set1_ps(128.0);
        let (u, v) = (_mm256_sub_ps(u, c128), _mm256_sub_ps(v, c128));
        let (lo, hi) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
        let (scale, offset) = (_mm256_set1_ps(scale), _mm256_set1_ps(offset));
        let mut out = [[0.0; 8]; 3];
        for (o, m) in out.iter_mut().zip(to_rgb) {
            let c = _mm256_fmadd_ps(
                _mm256_set1_ps(m[2]),
                v,
                _mm256_fmadd_ps(_mm256_set1_ps(m[1]), u, _mm256_mul_ps(_mm256_set1_ps(m[0]), yy)),
            );
            let c = _mm256_min_ps(_mm256_max_ps(c, lo), hi);
            *o = store(_mm256_fmadd_ps(c, scale, offset));
        }
        Some(out)
    }
}
