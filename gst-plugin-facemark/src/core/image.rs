//! Packed RGB-family frames: sampling into model tensors and pixel access for drawing.

use super::geometry::Roi;

/// Byte layout of one packed pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    Rgb,
    Bgr,
}

impl PixelLayout {
    pub const fn bytes_per_pixel(self) -> usize {
        match self {
            PixelLayout::Rgb | PixelLayout::Bgr => 3,
            _ => 4,
        }
    }

    /// Byte offsets of red, green and blue inside a pixel.
    pub const fn rgb_offsets(self) -> [usize; 3] {
        match self {
            PixelLayout::Rgba | PixelLayout::Rgbx | PixelLayout::Rgb => [0, 1, 2],
            PixelLayout::Bgra | PixelLayout::Bgrx | PixelLayout::Bgr => [2, 1, 0],
        }
    }
}

/// A read-only packed frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next (at least `width * bytes_per_pixel`).
    pub stride: usize,
    pub layout: PixelLayout,
}

/// A writable packed frame.
#[derive(Debug)]
pub struct FrameMut<'a> {
    pub data: &'a mut [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub layout: PixelLayout,
}

/// A frame's rows must fit its buffer: callers (GstVideoFrame, tests) guarantee it.
fn assert_fits(len: usize, width: usize, height: usize, stride: usize, layout: PixelLayout) {
    let row = width * layout.bytes_per_pixel();
    assert!(stride >= row, "stride {stride} shorter than a row of {row} bytes");
    assert!(height == 0 || len >= stride * (height - 1) + row, "{len} bytes cannot hold {width}x{height}");
}

impl<'a> Frame<'a> {
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Self {
        assert_fits(data.len(), width, height, stride, layout);
        Frame {
            data,
            width,
            height,
            stride,
            layout,
        }
    }
}

impl<'a> FrameMut<'a> {
    pub fn new(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Self {
        assert_fits(data.len(), width, height, stride, layout);
        FrameMut {
            data,
            width,
            height,
            stride,
            layout,
        }
    }

    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            data: self.data,
            width: self.width,
            height: self.height,
            stride: self.stride,
            layout: self.layout,
        }
    }
}

/// Samples the square `roi` of `frame` into an `n` x `n` planar RGB tensor (`out` holds
/// `3 * n * n` values, NCHW order), bilinearly, with `value * scale + offset` applied.
/// Pixels outside the frame count as black.
///
/// Pixel centres sit at `i + 0.5`; output pixel `(i, j)` samples crop coordinates
/// `((i + 0.5) / n - 0.5, (j + 0.5) / n - 0.5)`.
pub fn sample_roi(frame: &Frame, roi: &Roi, n: usize, scale: f32, offset: f32, out: &mut [f32]) {
    assert_eq!(out.len(), 3 * n * n);
    let bpp = frame.layout.bytes_per_pixel();
    let [ro, go, bo] = frame.layout.rgb_offsets();
    let (w, h) = (frame.width as isize, frame.height as isize);
    let (s, c) = roi.angle.sin_cos();
    let step = roi.side / n as f32;
    // Frame position (in pixel-index space, i.e. minus the 0.5 centre offset) of output (0, 0)
    // and its increments along output x and y.
    let (dxu, dyu) = (c * step, s * step);
    let (dxv, dyv) = (-s * step, c * step);
    let (x00, y00) = roi.to_frame(0.5 / n as f32 - 0.5, 0.5 / n as f32 - 0.5);
    let (x00, y00) = (x00 - 0.5, y00 - 0.5);
    let (r_plane, rest) = out.split_at_mut(n * n);
    let (g_plane, b_plane) = rest.split_at_mut(n * n);
    let data = frame.data;
    let stride = frame.stride;

    let fetch = |xi: isize, yi: isize| -> [f32; 3] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            return [0.0; 3];
        }
        let p = yi as usize * stride + xi as usize * bpp;
        [
            data[p + ro] as f32,
            data[p + go] as f32,
            data[p + bo] as f32,
        ]
    };

    for j in 0..n {
        let xr = x00 + dxv * j as f32;
        let yr = y00 + dyv * j as f32;
        for i in 0..n {
            let x = xr + dxu * i as f32;
            let y = yr + dyu * i as f32;
            let xf = x.floor();
            let yf = y.floor();
            let (fx, fy) = (x - xf, y - yf);
            let (xi, yi) = (xf as isize, yf as isize);
            let (a, b, cc, d);
            if xi >= 0 && yi >= 0 && xi + 1 < w && yi + 1 < h {
                let p = yi as usize * stride + xi as usize * bpp;
                let q = p + stride;
                let px = |o: usize| {
                    [
                        data[o + ro] as f32,
                        data[o + go] as f32,
                        data[o + bo] as f32,
                    ]
                };
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
            let k = j * n + i;
            let w00 = (1.0 - fx) * (1.0 - fy);
            let w10 = fx * (1.0 - fy);
            let w01 = (1.0 - fx) * fy;
            let w11 = fx * fy;
            r_plane[k] = (a[0] * w00 + b[0] * w10 + cc[0] * w01 + d[0] * w11) * scale + offset;
            g_plane[k] = (a[1] * w00 + b[1] * w10 + cc[1] * w01 + d[1] * w11) * scale + offset;
            b_plane[k] = (a[2] * w00 + b[2] * w10 + cc[2] * w01 + d[2] * w11) * scale + offset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize, layout: PixelLayout, stride: usize) -> Vec<u8> {
        let bpp = layout.bytes_per_pixel();
        let [ro, go, bo] = layout.rgb_offsets();
        let mut v = vec![7u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let p = y * stride + x * bpp;
                v[p + ro] = x as u8;
                v[p + go] = y as u8;
                v[p + bo] = 200;
            }
        }
        v
    }

    #[test]
    fn identity_sampling_reproduces_pixels() {
        for layout in [
            PixelLayout::Rgba,
            PixelLayout::Bgrx,
            PixelLayout::Rgb,
            PixelLayout::Bgr,
        ] {
            let stride = 8 * layout.bytes_per_pixel() + 5;
            let data = gradient(8, 8, layout, stride);
            let frame = Frame::new(&data, 8, 8, stride, layout);
            let roi = Roi {
                cx: 4.0,
                cy: 4.0,
                side: 8.0,
                angle: 0.0,
            };
            let mut out = vec![0.0; 3 * 64];
            sample_roi(&frame, &roi, 8, 1.0, 0.0, &mut out);
            for y in 0..8 {
                for x in 0..8 {
                    assert!((out[y * 8 + x] - x as f32).abs() < 1e-4, "{layout:?}");
                    assert!((out[64 + y * 8 + x] - y as f32).abs() < 1e-4);
                    assert!((out[128 + y * 8 + x] - 200.0).abs() < 1e-4);
                }
            }
        }
    }

    #[test]
    fn outside_is_black_and_normalised() {
        let data = gradient(4, 4, PixelLayout::Rgb, 12);
        let frame = Frame::new(&data, 4, 4, 12, PixelLayout::Rgb);
        let roi = Roi {
            cx: 100.0,
            cy: 100.0,
            side: 4.0,
            angle: 0.0,
        };
        let mut out = vec![0.0; 3 * 16];
        sample_roi(&frame, &roi, 4, 1.0 / 127.5, -1.0, &mut out);
        assert!(out.iter().all(|v| (*v + 1.0).abs() < 1e-6));
    }

    #[test]
    fn rotated_sampling_turns_the_image() {
        // A quarter turn: output x runs along frame y.
        let data = gradient(8, 8, PixelLayout::Rgb, 24);
        let frame = Frame::new(&data, 8, 8, 24, PixelLayout::Rgb);
        let roi = Roi {
            cx: 4.0,
            cy: 4.0,
            side: 8.0,
            angle: std::f32::consts::FRAC_PI_2,
        };
        let mut out = vec![0.0; 3 * 64];
        sample_roi(&frame, &roi, 8, 1.0, 0.0, &mut out);
        // green = frame y; along output x it must grow.
        assert!((out[64 + 3 * 8 + 1] - 1.0).abs() < 1e-3);
        assert!((out[64 + 3 * 8 + 6] - 6.0).abs() < 1e-3);
    }
}
