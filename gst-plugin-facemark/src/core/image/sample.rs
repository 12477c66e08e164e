//! Sampling a rotated square of a frame into a model's input, bilinearly: the vector code for
//! whole blocks where the CPU has it (avx2.rs), one pixel at a time elsewhere.

use super::{Chroma, Frame, PixelFormat, PixelLayout, Planes, YuvColor};
use crate::core::geometry::Roi;

/// Samples the square `roi` of `frame` into an `n` x `n` RGB image (mirrored left to right
/// when `mirrored`), bilinearly, with `value * scale + offset` applied. Pixels outside the
/// frame count as black.
///
/// Pixel centres sit at `i + 0.5`; output pixel `(i, j)` samples crop coordinates
/// `((i + 0.5) / n - 0.5, (j + 0.5) / n - 0.5)` (`i` counted from the right when mirrored).
pub fn sample_roi(frame: &Frame, roi: &Roi, n: usize, mirrored: bool, scale: f32, offset: f32, out: Planes) {
    sample_roi_with(frame, roi, n, mirrored, (scale, offset), out, true)
}

/// [`sample_roi`], with the vector code (where the CPU has it) or without.
pub(super) fn sample_roi_with(
    frame: &Frame,
    roi: &Roi,
    n: usize,
    mirrored: bool,
    (scale, offset): (f32, f32),
    mut out: Planes,
    vectors: bool,
) {
    assert!(n > 0 && out.row >= n && out.plane >= (n - 1) * out.row + n);
    assert!(out.data.len() >= 2 * out.plane + (n - 1) * out.row + n, "planes too short");
    let (s, c) = roi.angle.sin_cos();
    let step = roi.side / n as f32;
    // Frame position (in pixel-index space, i.e. minus the 0.5 centre offset) of output (0, 0)
    // and its increments along output x and y.
    let (x00, y00) = roi.to_frame(0.5 / n as f32 - 0.5, 0.5 / n as f32 - 0.5);
    let mut grid = Grid { n, x00: x00 - 0.5, y00: y00 - 0.5, du: (c * step, s * step), dv: (-s * step, c * step) };
    if mirrored {
        grid.x00 += grid.du.0 * (n - 1) as f32;
        grid.y00 += grid.du.1 * (n - 1) as f32;
        grid.du = (-grid.du.0, -grid.du.1);
    }
    #[cfg(target_arch = "x86_64")]
    let vectors = vectors && std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    match frame.format {
        PixelFormat::Packed(layout) => sample_packed(frame, layout, &grid, scale, offset, &mut out, vectors),
        PixelFormat::Yuv420(chroma, color) => {
            sample_yuv420(frame, chroma, &color, &grid, scale, offset, &mut out, vectors)
        }
    }
}

/// No vector code on this CPU architecture: no [`Grid::fill`] block sampler.
#[cfg(not(target_arch = "x86_64"))]
const NO_BLOCKS: Option<fn(f32, f32, f32, f32) -> Option<[[f32; 8]; 3]>> = None;

/// The frame positions an `n` x `n` output samples: output (i, j) is at
/// `(x00, y00) + i * du + j * dv`, in pixel-index space.
struct Grid {
    n: usize,
    x00: f32,
    y00: f32,
    du: (f32, f32),
    dv: (f32, f32),
}

impl Grid {
    /// Fills `out`: `block(x, y, dx, dy)` gives the values of 8 pixels from (x, y) on, when it
    /// can (blocks inside the frame, a CPU with vectors); `pixel(x, y)` gives the others.
    #[inline(always)]
    fn fill(
        &self,
        out: &mut Planes,
        pixel: impl Fn(f32, f32) -> [f32; 3],
        block: Option<impl Fn(f32, f32, f32, f32) -> Option<[[f32; 8]; 3]>>,
    ) {
        let (dx, dy) = self.du;
        for j in 0..self.n {
            let xr = self.x00 + self.dv.0 * j as f32;
            let yr = self.y00 + self.dv.1 * j as f32;
            let at = |i: usize| (xr + dx * i as f32, yr + dy * i as f32);
            let mut i = 0;
            if let Some(block) = &block {
                while i + 8 <= self.n {
                    let (x, y) = at(i);
                    match block(x, y, dx, dy) {
                        Some(v) => out.set8(i, j, v),
                        None => {
                            for q in i..i + 8 {
                                let (x, y) = at(q);
                                out.set(q, j, pixel(x, y));
                            }
                        }
                    }
                    i += 8;
                }
            }
            for q in i..self.n {
                let (x, y) = at(q);
                out.set(q, j, pixel(x, y));
            }
        }
    }
}

fn sample_packed(
    frame: &Frame,
    layout: PixelLayout,
    grid: &Grid,
    scale: f32,
    offset: f32,
    out: &mut Planes,
    vectors: bool,
) {
    let bpp = layout.bytes_per_pixel();
    let [ro, go, bo] = layout.rgb_offsets();
    let (w, h) = (frame.width as isize, frame.height as isize);
    let (data, stride) = frame.plane(0);
    let px = |o: usize| -> [f32; 3] { [data[o + ro] as f32, data[o + go] as f32, data[o + bo] as f32] };
    let fetch = |xi: isize, yi: isize| -> [f32; 3] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            return [0.0; 3];
        }
        px(yi as usize * stride + xi as usize * bpp)
    };
    let pixel = |x: f32, y: f32| -> [f32; 3] {
        let (xi, yi) = (floor_index(x), floor_index(y));
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let (a, b, cc, d);
        if xi >= 0 && yi >= 0 && xi + 1 < w && yi + 1 < h {
            let p = yi as usize * stride + xi as usize * bpp;
            let q = p + stride;
            a = px(p);
            b = px(p + bpp);
            cc = px(q);
            d = px(q + bpp);
        } else {
            a = fetch(xi, yi);
            b = fetch(xi + 1, yi);
            cc = fetch(xi, yi + 1);
            d = fetch(xi + 1, yi + 1);
        }
        std::array::from_fn(|c| {
            let top = a[c] + fx * (b[c] - a[c]);
            let bottom = cc[c] + fx * (d[c] - cc[c]);
            (top + fy * (bottom - top)) * scale + offset
        })
    };
    #[cfg(target_arch = "x86_64")]
    {
        use super::avx2::{Plane, packed8};
        let plane = Plane::new(data, stride, bpp, frame.width, frame.height).filter(|_| vectors);
        // SAFETY: the plane was made from the frame's data, alive for the call, and `vectors`
        // says the CPU has AVX2 and FMA.
        let block =
            plane.map(|p| move |x, y, dx, dy| unsafe { packed8(&p, [ro, go, bo], (x, y, dx, dy), scale, offset) });
        grid.fill(out, pixel, block);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = vectors;
        grid.fill(out, pixel, NO_BLOCKS);
    }
}

/// `x.floor()` as an index, without the libm call `floor` is on x86-64's baseline (no SSE4.1);
/// NaN gives 0, values past isize's range saturate.
#[inline(always)]
pub(super) fn floor_index(x: f32) -> isize {
    let t = x as isize;
    t - ((t as f32) > x) as isize
}

/// One 8-bit channel of a plane: sample (x, y) is at `y * stride + x * step`.
struct Channel<'a> {
    data: &'a [u8],
    stride: usize,
    step: usize,
    width: isize,
    height: isize,
    /// The value outside the frame (black).
    fill: f32,
}

impl Channel<'_> {
    #[inline(always)]
    fn at(&self, x: isize, y: isize) -> f32 {
        if x < 0 || y < 0 || x >= self.width || y >= self.height {
            return self.fill;
        }
        self.data[y as usize * self.stride + x as usize * self.step] as f32
    }

    /// Bilinear value at (x, y) in sample-index space.
    #[inline(always)]
    fn bilinear(&self, x: f32, y: f32) -> f32 {
        let (xi, yi) = (floor_index(x), floor_index(y));
        let (fx, fy) = (x - xi as f32, y - yi as f32);
        let top = self.at(xi, yi) * (1.0 - fx) + self.at(xi + 1, yi) * fx;
        let bottom = self.at(xi, yi + 1) * (1.0 - fx) + self.at(xi + 1, yi + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// Interpolates Y, U and V separately (each on its own grid) and converts once per output
/// pixel: the conversion is linear, so this equals interpolating converted RGB, without
/// converting the frame.
#[allow(clippy::too_many_arguments)]
fn sample_yuv420(
    frame: &Frame,
    chroma: Chroma,
    color: &YuvColor,
    grid: &Grid,
    scale: f32,
    offset: f32,
    out: &mut Planes,
    vectors: bool,
) {
    let black = color.black();
    let (w, h) = (frame.width as isize, frame.height as isize);
    let (cw, ch) = ((w + 1) / 2, (h + 1) / 2);
    let channel = |plane: usize, skip: usize, step: usize, width, height, fill| {
        let (data, stride) = frame.plane(plane);
        Channel { data: data.get(skip..).unwrap_or(&[]), stride, step, width, height, fill }
    };
    let luma = channel(0, 0, 1, w, h, black[0]);
    let (u, v) = match chroma {
        Chroma::Planar => (channel(1, 0, 1, cw, ch, black[1]), channel(2, 0, 1, cw, ch, black[2])),
        Chroma::Interleaved => (channel(1, 0, 2, cw, ch, black[1]), channel(1, 1, 2, cw, ch, black[2])),
    };
    let pixel = |x: f32, y: f32| -> [f32; 3] {
        // A chroma sample covers 2 x 2 luma pixels and sits at their centre.
        let (cx, cy) = ((x + 0.5) * 0.5 - 0.5, (y + 0.5) * 0.5 - 0.5);
        let rgb = color.rgb(luma.bilinear(x, y), u.bilinear(cx, cy), v.bilinear(cx, cy));
        rgb.map(|c| c.clamp(0.0, 255.0) * scale + offset)
    };
    #[cfg(target_arch = "x86_64")]
    {
        use super::avx2::{ChromaPlanes, Plane, yuv8};
        let plane = |i: usize, step, width: isize, height: isize| {
            let (data, stride) = frame.plane(i);
            Plane::new(data, stride, step, width as usize, height as usize)
        };
        let planes = (|| {
            let chroma = match chroma {
                Chroma::Planar => ChromaPlanes::Planar(plane(1, 1, cw, ch)?, plane(2, 1, cw, ch)?),
                Chroma::Interleaved => ChromaPlanes::Interleaved(plane(1, 2, cw, ch)?),
            };
            Some((plane(0, 1, w, h)?, chroma))
        })()
        .filter(|_| vectors);
        let conversion = (color.to_rgb, color.y_black);
        // SAFETY: the planes were made from the frame's data, alive for the call, and
        // `vectors` says the CPU has AVX2 and FMA.
        let block = planes
            .as_ref()
            .map(|(l, c)| move |x, y, dx, dy| unsafe { yuv8(l, c, conversion, (x, y, dx, dy), scale, offset) });
        grid.fill(out, pixel, block);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = vectors;
        grid.fill(out, pixel, NO_BLOCKS);
    }
}
