//! Frames (packed RGB family, planar I420, semi-planar NV12): sampling into model tensors and
//! pixel access for drawing.

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

/// How 4:2:0 chroma is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// I420: a U plane and a V plane, each at half width and half height.
    Planar,
    /// NV12: one plane of interleaved U, V pairs at half height.
    Interleaved,
}

/// The conversion between 8-bit Y'CbCr and R'G'B' for one matrix and range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvColor {
    /// R, G, B = `to_rgb` x (Y - y_black, U - 128, V - 128).
    to_rgb: [[f32; 3]; 3],
    /// Y - y_black, U - 128, V - 128 = `to_yuv` x (R, G, B).
    to_yuv: [[f32; 3]; 3],
    y_black: f32,
}

impl YuvColor {
    /// From the luma weights of red and blue (`kr`, `kb`) and the range: limited (video) range
    /// puts Y in 16..=235 and chroma in 16..=240, full range uses 0..=255 for both.
    pub fn new(kr: f32, kb: f32, full_range: bool) -> YuvColor {
        let kg = 1.0 - kr - kb;
        let (y_scale, c_scale, y_black) = if full_range {
            (1.0, 1.0, 0.0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16.0)
        };
        // R' = Y' + 2(1-kr) Pr, B' = Y' + 2(1-kb) Pb, G' = (Y' - kr R' - kb B') / kg.
        let (rv, bu) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb));
        let to_rgb = [
            [y_scale, 0.0, rv * c_scale],
            [y_scale, -kb * bu / kg * c_scale, -kr * rv / kg * c_scale],
            [y_scale, bu * c_scale, 0.0],
        ];
        let to_yuv = [
            [kr / y_scale, kg / y_scale, kb / y_scale],
            [
                -kr / bu / c_scale,
                -kg / bu / c_scale,
                (1.0 - kb) / bu / c_scale,
            ],
            [
                (1.0 - kr) / rv / c_scale,
                -kg / rv / c_scale,
                -kb / rv / c_scale,
            ],
        ];
        YuvColor {
            to_rgb,
            to_yuv,
            y_black,
        }
    }

    /// ITU-R BT.601, limited range: what untagged SD video uses.
    pub fn bt601() -> YuvColor {
        YuvColor::new(0.299, 0.114, false)
    }

    /// ITU-R BT.709, limited range: HD video.
    pub fn bt709() -> YuvColor {
        YuvColor::new(0.2126, 0.0722, false)
    }

    /// ITU-R BT.2020 (non-constant luminance).
    pub fn bt2020(full_range: bool) -> YuvColor {
        YuvColor::new(0.2627, 0.0593, full_range)
    }

    /// Y, U, V (floats, not clamped) to R, G, B in 0..=255 (not clamped).
    #[inline]
    pub fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let (y, u, v) = (y - self.y_black, u - 128.0, v - 128.0);
        self.to_rgb.map(|m| m[0] * y + m[1] * u + m[2] * v)
    }

    /// The 8-bit Y, U, V of an 8-bit R, G, B colour.
    pub fn yuv(&self, rgb: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = rgb.map(f32::from);
        let [y, u, v] = self.to_yuv.map(|m| m[0] * r + m[1] * g + m[2] * b);
        [y + self.y_black, u + 128.0, v + 128.0].map(|c| c.round().clamp(0.0, 255.0) as u8)
    }

    /// Y, U, V of black.
    fn black(&self) -> [f32; 3] {
        [self.y_black, 128.0, 128.0]
    }
}

/// How a frame's bytes encode its pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PixelFormat {
    /// One plane of packed R, G, B (and maybe alpha or padding) bytes.
    Packed(PixelLayout),
    /// 8-bit Y'CbCr 4:2:0: a full-size Y plane and chroma at half width and half height.
    Yuv420(Chroma, YuvColor),
}

/// Where one of a pixel's three components lives: in `plane`, at
/// `(y >> shift) * stride + (x >> shift) * step + offset`.
#[derive(Clone, Copy, Debug)]
struct Component {
    plane: usize,
    offset: usize,
    step: usize,
    shift: u32,
}

impl PixelFormat {
    /// The three components (R, G, B or Y, U, V) in the order drawing writes them.
    fn components(&self) -> [Component; 3] {
        let c = |plane, offset, step, shift| Component {
            plane,
            offset,
            step,
            shift,
        };
        match *self {
            PixelFormat::Packed(layout) => {
                let bpp = layout.bytes_per_pixel();
                layout.rgb_offsets().map(|o| c(0, o, bpp, 0))
            }
            PixelFormat::Yuv420(Chroma::Planar, _) => [c(0, 0, 1, 0), c(1, 0, 1, 1), c(2, 0, 1, 1)],
            PixelFormat::Yuv420(Chroma::Interleaved, _) => {
                [c(0, 0, 1, 0), c(1, 0, 2, 1), c(1, 1, 2, 1)]
            }
        }
    }

    fn planes(&self) -> usize {
        match self {
            PixelFormat::Packed(_) => 1,
            PixelFormat::Yuv420(Chroma::Planar, _) => 3,
            PixelFormat::Yuv420(Chroma::Interleaved, _) => 2,
        }
    }

    /// The bytes drawing writes for an R, G, B colour, in [`PixelFormat::components`] order.
    fn encode(&self, rgb: [u8; 3]) -> [u8; 3] {
        match self {
            PixelFormat::Packed(_) => rgb,
            PixelFormat::Yuv420(_, color) => color.yuv(rgb),
        }
    }

    /// Bytes one row of plane `plane` needs for a frame `width` pixels wide, and its row count.
    fn plane_extent(&self, plane: usize, width: usize, height: usize) -> (usize, usize) {
        match (self, plane) {
            (PixelFormat::Packed(layout), _) => (width * layout.bytes_per_pixel(), height),
            (PixelFormat::Yuv420(..), 0) => (width, height),
            (PixelFormat::Yuv420(Chroma::Planar, _), _) => (width.div_ceil(2), height.div_ceil(2)),
            (PixelFormat::Yuv420(Chroma::Interleaved, _), _) => {
                (2 * width.div_ceil(2), height.div_ceil(2))
            }
        }
    }
}

/// A frame's planes must hold its rows: callers (GstVideoFrame, tests) guarantee it.
fn assert_fits(
    lens: [usize; 3],
    strides: [usize; 3],
    width: usize,
    height: usize,
    format: &PixelFormat,
) {
    for p in 0..format.planes() {
        let (row, rows) = format.plane_extent(p, width, height);
        let (len, stride) = (lens[p], strides[p]);
        assert!(
            stride >= row,
            "plane {p}: stride {stride} shorter than a row of {row} bytes"
        );
        assert!(
            rows == 0 || len >= stride * (rows - 1) + row,
            "plane {p}: {len} bytes cannot hold {width}x{height}"
        );
    }
}

/// A read-only frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub format: PixelFormat,
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
}

/// A writable frame.
#[derive(Debug)]
pub struct FrameMut<'a> {
    pub width: usize,
    pub height: usize,
    pub format: PixelFormat,
    planes: [&'a mut [u8]; 3],
    strides: [usize; 3],
    /// `format.components()`, looked up once rather than per drawn pixel.
    components: [Component; 3],
}

impl<'a> Frame<'a> {
    /// A packed frame, rows `stride` bytes apart.
    pub fn new(
        data: &'a [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Self {
        Self::with_planes(
            width,
            height,
            PixelFormat::Packed(layout),
            [data, &[], &[]],
            [stride, 0, 0],
        )
    }

    /// Any format: `planes` and `strides` as GStreamer orders them (unused entries empty, 0).
    pub fn with_planes(
        width: usize,
        height: usize,
        format: PixelFormat,
        planes: [&'a [u8]; 3],
        strides: [usize; 3],
    ) -> Self {
        assert_fits(planes.map(<[u8]>::len), strides, width, height, &format);
        Frame {
            width,
            height,
            format,
            planes,
            strides,
        }
    }

    /// Plane `plane`'s bytes and stride.
    pub fn plane(&self, plane: usize) -> (&'a [u8], usize) {
        (self.planes[plane], self.strides[plane])
    }
}

impl<'a> FrameMut<'a> {
    /// A packed frame, rows `stride` bytes apart.
    pub fn new(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        stride: usize,
        layout: PixelLayout,
    ) -> Self {
        Self::with_planes(
            width,
            height,
            PixelFormat::Packed(layout),
            [data, &mut [], &mut []],
            [stride, 0, 0],
        )
    }

    /// Any format: `planes` and `strides` as GStreamer orders them (unused entries empty, 0).
    pub fn with_planes(
        width: usize,
        height: usize,
        format: PixelFormat,
        planes: [&'a mut [u8]; 3],
        strides: [usize; 3],
    ) -> Self {
        assert_fits(
            [planes[0].len(), planes[1].len(), planes[2].len()],
            strides,
            width,
            height,
            &format,
        );
        FrameMut {
            width,
            height,
            format,
            planes,
            strides,
            components: format.components(),
        }
    }

    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            width: self.width,
            height: self.height,
            format: self.format,
            planes: [&*self.planes[0], &*self.planes[1], &*self.planes[2]],
            strides: self.strides,
        }
    }

    /// The bytes [`FrameMut::put`] writes for an R, G, B colour.
    pub fn encode(&self, rgb: [u8; 3]) -> [u8; 3] {
        self.format.encode(rgb)
    }

    /// Sets the pixel at (x, y) to `value` (from [`FrameMut::encode`]); outside the frame does
    /// nothing. In 4:2:0 formats the pixel's chroma sample (shared by 2 x 2 pixels) takes the
    /// colour's chroma.
    #[inline]
    pub fn put(&mut self, x: i32, y: i32, value: [u8; 3]) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        for (c, v) in self.components.into_iter().zip(value) {
            let p = (y >> c.shift) * self.strides[c.plane] + (x >> c.shift) * c.step + c.offset;
            self.planes[c.plane][p] = v;
        }
    }
}

/// A frame's pixels copied out of a buffer, so that inference can run on them after the buffer
/// has moved on. Refilling reuses the allocation.
#[derive(Debug, Default)]
pub struct OwnedFrame {
    width: usize,
    height: usize,
    format: Option<PixelFormat>,
    planes: [Vec<u8>; 3],
    strides: [usize; 3],
}

impl OwnedFrame {
    /// Copies `frame`'s rows (without their padding).
    pub fn fill_from(&mut self, frame: &Frame) {
        self.width = frame.width;
        self.height = frame.height;
        self.format = Some(frame.format);
        for p in 0..3 {
            let plane = &mut self.planes[p];
            plane.clear();
            if p >= frame.format.planes() {
                self.strides[p] = 0;
                continue;
            }
            let (row, rows) = frame.format.plane_extent(p, frame.width, frame.height);
            let (data, stride) = frame.plane(p);
            plane.reserve(row * rows);
            for r in 0..rows {
                plane.extend_from_slice(&data[r * stride..r * stride + row]);
            }
            self.strides[p] = row;
        }
    }

    /// The copy as a frame; `None` before the first [`OwnedFrame::fill_from`].
    pub fn as_frame(&self) -> Option<Frame<'_>> {
        Some(Frame::with_planes(
            self.width,
            self.height,
            self.format?,
            [&self.planes[0], &self.planes[1], &self.planes[2]],
            self.strides,
        ))
    }
}

/// Where [`sample_roi`] writes its `n` x `n` RGB image: value (channel, y, x) at
/// `data[channel * plane + y * row + x]` (NCHW: `plane = n * n`, `row = n`; a model input
/// with borders has longer rows and planes).
pub struct Planes<'a> {
    pub data: &'a mut [f32],
    pub plane: usize,
    pub row: usize,
}

impl<'a> Planes<'a> {
    /// Three `n` x `n` planes one after the other.
    pub fn nchw(data: &'a mut [f32], n: usize) -> Planes<'a> {
        Planes {
            data,
            plane: n * n,
            row: n,
        }
    }

    /// Writes the 3 values of output pixel (x, y).
    #[inline(always)]
    fn set(&mut self, x: usize, y: usize, rgb: [f32; 3]) {
        for (c, v) in rgb.into_iter().enumerate() {
            self.data[c * self.plane + y * self.row + x] = v;
        }
    }

    /// Writes the 3 x 8 values of output pixels (x..x + 8, y).
    #[inline(always)]
    fn set8(&mut self, x: usize, y: usize, rgb: [[f32; 8]; 3]) {
        for (c, v) in rgb.into_iter().enumerate() {
            self.data[c * self.plane + y * self.row + x..][..8].copy_from_slice(&v);
        }
    }
}

/// Samples the square `roi` of `frame` into an `n` x `n` RGB image (mirrored left to right
/// when `mirrored`), bilinearly, with `value * scale + offset` applied. Pixels outside the
/// frame count as black.
///
/// Pixel centres sit at `i + 0.5`; output pixel `(i, j)` samples crop coordinates
/// `((i + 0.5) / n - 0.5, (j + 0.5) / n - 0.5)` (`i` counted from the right when mirrored).
pub fn sample_roi(
    frame: &Frame,
    roi: &Roi,
    n: usize,
    mirrored: bool,
    scale: f32,
    offset: f32,
    out: Planes,
) {
    sample_roi_with(frame, roi, n, mirrored, (scale, offset), out, true)
}

/// [`sample_roi`], with the vector code (where the CPU has it) or without.
fn sample_roi_with(
    frame: &Frame,
    roi: &Roi,
    n: usize,
    mirrored: bool,
    (scale, offset): (f32, f32),
    mut out: Planes,
    vectors: bool,
) {
    assert!(n > 0 && out.row >= n && out.plane >= (n - 1) * out.row + n);
    assert!(
        out.data.len() >= 2 * out.plane + (n - 1) * out.row + n,
        "planes too short"
    );
    let (s, c) = roi.angle.sin_cos();
    let step = roi.side / n as f32;
    // Frame position (in pixel-index space, i.e. minus the 0.5 centre offset) of output (0, 0)
    // and its increments along output x and y.
    let (x00, y00) = roi.to_frame(0.5 / n as f32 - 0.5, 0.5 / n as f32 - 0.5);
    let mut grid = Grid {
        n,
        x00: x00 - 0.5,
        y00: y00 - 0.5,
        du: (c * step, s * step),
        dv: (-s * step, c * step),
    };
    if mirrored {
        grid.x00 += grid.du.0 * (n - 1) as f32;
        grid.y00 += grid.du.1 * (n - 1) as f32;
        grid.du = (-grid.du.0, -grid.du.1);
    }
    #[cfg(target_arch = "x86_64")]
    let vectors = vectors
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma");
    match frame.format {
        PixelFormat::Packed(layout) => {
            sample_packed(frame, layout, &grid, scale, offset, &mut out, vectors)
        }
        PixelFormat::Yuv420(chroma, color) => sample_yuv420(
            frame, chroma, &color, &grid, scale, offset, &mut out, vectors,
        ),
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
    let px = |o: usize| -> [f32; 3] {
        [
            data[o + ro] as f32,
            data[o + go] as f32,
            data[o + bo] as f32,
        ]
    };
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
        use super::image_avx2::{Plane, packed8};
        let plane = Plane::new(data, stride, bpp, frame.width, frame.height).filter(|_| vectors);
        // SAFETY: the plane was made from the frame's data, alive for the call, and `vectors`
        // says the CPU has AVX2 and FMA.
        let block = plane.map(|p| {
            move |x, y, dx, dy| unsafe { packed8(&p, [ro, go, bo], (x, y, dx, dy), scale, offset) }
        });
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
fn floor_index(x: f32) -> isize {
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
        Channel {
            data: data.get(skip..).unwrap_or(&[]),
            stride,
            step,
            width,
            height,
            fill,
        }
    };
    let luma = channel(0, 0, 1, w, h, black[0]);
    let (u, v) = match chroma {
        Chroma::Planar => (
            channel(1, 0, 1, cw, ch, black[1]),
            channel(2, 0, 1, cw, ch, black[2]),
        ),
        Chroma::Interleaved => (
            channel(1, 0, 2, cw, ch, black[1]),
            channel(1, 1, 2, cw, ch, black[2]),
        ),
    };
    let pixel = |x: f32, y: f32| -> [f32; 3] {
        // A chroma sample covers 2 x 2 luma pixels and sits at their centre.
        let (cx, cy) = ((x + 0.5) * 0.5 - 0.5, (y + 0.5) * 0.5 - 0.5);
        let rgb = color.rgb(luma.bilinear(x, y), u.bilinear(cx, cy), v.bilinear(cx, cy));
        rgb.map(|c| c.clamp(0.0, 255.0) * scale + offset)
    };
    #[cfg(target_arch = "x86_64")]
    {
        use super::image_avx2::{ChromaPlanes, Plane, yuv8};
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
        let block = planes.as_ref().map(|(l, c)| {
            move |x, y, dx, dy| unsafe { yuv8(l, c, conversion, (x, y, dx, dy), scale, offset) }
        });
        grid.fill(out, pixel, block);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = vectors;
        grid.fill(out, pixel, NO_BLOCKS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_index_is_floor() {
        for x in [
            -2.5f32,
            -1.0,
            -0.5,
            -0.0,
            0.0,
            0.25,
            1.0,
            2.75,
            1e6,
            -1e6 - 0.5,
        ] {
            assert_eq!(floor_index(x), x.floor() as isize, "{x}");
        }
        assert_eq!(floor_index(f32::NAN), 0);
    }

    /// `frame` sampled unrotated, unscaled into `n` x `n` around (cx, cy), `side` pixels wide.
    fn sample_square(frame: &Frame, (cx, cy): (f32, f32), side: f32, n: usize) -> Vec<f32> {
        let roi = Roi {
            cx,
            cy,
            side,
            angle: 0.0,
        };
        let mut out = vec![0.0; 3 * n * n];
        sample_roi(frame, &roi, n, false, 1.0, 0.0, Planes::nchw(&mut out, n));
        out
    }

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
            let out = sample_square(&frame, (4.0, 4.0), 8.0, 8);
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
        sample_roi(
            &frame,
            &roi,
            4,
            false,
            1.0 / 127.5,
            -1.0,
            Planes::nchw(&mut out, 4),
        );
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
        sample_roi(&frame, &roi, 8, false, 1.0, 0.0, Planes::nchw(&mut out, 8));
        // green = frame y; along output x it must grow.
        assert!((out[64 + 3 * 8 + 1] - 1.0).abs() < 1e-3);
        assert!((out[64 + 3 * 8 + 6] - 6.0).abs() < 1e-3);
    }

    #[test]
    fn yuv_colours_match_bt601_and_round_trip() {
        let bt601 = YuvColor::bt601();
        assert_eq!(bt601.yuv([255, 255, 255]), [235, 128, 128]);
        assert_eq!(bt601.yuv([0, 0, 0]), [16, 128, 128]);
        assert_eq!(bt601.yuv([255, 0, 0]), [81, 90, 240]);
        for color in [bt601, YuvColor::bt709(), YuvColor::bt2020(true)] {
            for rgb in [[255, 48, 48], [48, 255, 48], [224, 224, 224], [10, 20, 200]] {
                let [y, u, v] = color.yuv(rgb).map(f32::from);
                let back = color.rgb(y, u, v);
                for (a, b) in back.iter().zip(rgb) {
                    assert!((a - b as f32).abs() < 2.5, "{rgb:?} -> {back:?}");
                }
            }
        }
    }

    /// A `w` x `h` 4:2:0 frame's planes: Y from `luma(x, y)`, chroma `uv` everywhere, strides
    /// padded by `pad`, padding bytes 0xAB.
    fn yuv_planes(
        chroma: Chroma,
        w: usize,
        h: usize,
        pad: usize,
        luma: impl Fn(usize, usize) -> u8,
        uv: [u8; 2],
    ) -> (Vec<Vec<u8>>, [usize; 3]) {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let ys = w + pad;
        let mut y = vec![0xAB; ys * h];
        for row in 0..h {
            for x in 0..w {
                y[row * ys + x] = luma(x, row);
            }
        }
        match chroma {
            Chroma::Planar => {
                let cs = cw + pad;
                let mut u = vec![0xAB; cs * ch];
                let mut v = vec![0xAB; cs * ch];
                for row in 0..ch {
                    u[row * cs..row * cs + cw].fill(uv[0]);
                    v[row * cs..row * cs + cw].fill(uv[1]);
                }
                (vec![y, u, v], [ys, cs, cs])
            }
            Chroma::Interleaved => {
                let cs = 2 * cw + pad;
                let mut c = vec![0xAB; cs * ch];
                for row in 0..ch {
                    for x in 0..cw {
                        c[row * cs + 2 * x..row * cs + 2 * x + 2].copy_from_slice(&uv);
                    }
                }
                (vec![y, c, Vec::new()], [ys, cs, 0])
            }
        }
    }

    /// The frame over planes from [`yuv_planes`].
    fn yuv_frame<'a>(
        planes: &'a [Vec<u8>],
        strides: [usize; 3],
        (w, h): (usize, usize),
        chroma: Chroma,
        color: YuvColor,
    ) -> Frame<'a> {
        Frame::with_planes(
            w,
            h,
            PixelFormat::Yuv420(chroma, color),
            [&planes[0], &planes[1], &planes[2]],
            strides,
        )
    }

    #[test]
    fn yuv420_sampling_converts_to_rgb() {
        let color = YuvColor::bt601();
        for chroma in [Chroma::Planar, Chroma::Interleaved] {
            // Luma ramp 16 + 10 x, neutral chroma: grey levels (10 x) * 255 / 219.
            let (planes, strides) = yuv_planes(chroma, 9, 7, 3, |x, _| 16 + 10 * x as u8, [128; 2]);
            let frame = yuv_frame(&planes, strides, (9, 7), chroma, color);
            let out = sample_square(&frame, (3.5, 3.5), 7.0, 7);
            for x in 0..7 {
                let want = 10.0 * x as f32 * 255.0 / 219.0;
                for plane in 0..3 {
                    let got = out[plane * 49 + 3 * 7 + x];
                    assert!(
                        (got - want).abs() < 0.01,
                        "{chroma:?} x {x}: {got} vs {want}"
                    );
                }
            }
            // A uniform colour comes back as itself.
            let [y, u, v] = color.yuv([200, 40, 90]);
            let (planes, strides) = yuv_planes(chroma, 5, 5, 0, |_, _| y, [u, v]);
            let frame = yuv_frame(&planes, strides, (5, 5), chroma, color);
            let out = sample_square(&frame, (2.5, 2.5), 1.0, 1);
            for (got, want) in out.iter().zip([200.0, 40.0, 90.0]) {
                assert!((got - want).abs() < 2.5, "{chroma:?}: {out:?}");
            }
        }
    }

    /// Pseudo-random bytes (no extra dependency).
    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2654435761) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect()
    }

    /// The vector code gives what the one-pixel-at-a-time code gives, for every format, on
    /// regions inside, across and outside the frame's edges, turned, scaled and mirrored,
    /// written into planes with borders.
    #[test]
    fn vector_sampling_matches_pixel_by_pixel() {
        let (w, h) = (37, 29);
        let rois = [
            (18.0, 14.0, 20.0, 0.0),
            (18.5, 13.2, 31.0, 0.7),
            (2.0, 3.0, 24.0, -2.1),
            (35.0, 27.0, 16.0, 3.0),
            (100.0, -40.0, 10.0, 0.2),
        ];
        let check = |frame: &Frame, what: &str| {
            for (k, &(cx, cy, side, angle)) in rois.iter().enumerate() {
                for mirrored in [false, true] {
                    let roi = Roi {
                        cx,
                        cy,
                        side,
                        angle,
                    };
                    let n = 24;
                    let (row, plane) = (n + 5, (n + 5) * (n + 3));
                    let run = |vectors| {
                        let mut v = vec![-7.0f32; 3 * plane];
                        let out = Planes {
                            data: &mut v,
                            plane,
                            row,
                        };
                        sample_roi_with(frame, &roi, n, mirrored, (1.0 / 255.0, 0.5), out, vectors);
                        v
                    };
                    let (a, b) = (run(true), run(false));
                    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                        assert!(
                            (x - y).abs() < 1e-4,
                            "{what} roi {k} mirrored {mirrored} at {i}: {x} vs {y}"
                        );
                    }
                }
            }
        };
        for layout in [
            PixelLayout::Rgba,
            PixelLayout::Bgrx,
            PixelLayout::Rgb,
            PixelLayout::Bgr,
        ] {
            for pad in [0, 3] {
                let stride = w * layout.bytes_per_pixel() + pad;
                let data = noise(stride * h, 5);
                check(
                    &Frame::new(&data, w, h, stride, layout),
                    &format!("{layout:?} pad {pad}"),
                );
            }
        }
        for chroma in [Chroma::Planar, Chroma::Interleaved] {
            for pad in [0, 2] {
                let (mut planes, strides) = yuv_planes(chroma, w, h, pad, |_, _| 0, [0; 2]);
                for (i, p) in planes.iter_mut().enumerate() {
                    let n = p.len();
                    p.copy_from_slice(&noise(n, 11 + i as u32));
                }
                let frame = yuv_frame(&planes, strides, (w, h), chroma, YuvColor::bt709());
                check(&frame, &format!("{chroma:?} pad {pad}"));
            }
        }
    }

    #[test]
    fn mirrored_sampling_reverses_rows() {
        let data = gradient(8, 8, PixelLayout::Rgb, 24);
        let frame = Frame::new(&data, 8, 8, 24, PixelLayout::Rgb);
        let roi = Roi {
            cx: 4.0,
            cy: 4.0,
            side: 8.0,
            angle: 0.3,
        };
        let mut plain = vec![0.0; 3 * 64];
        let mut mirrored = vec![0.0; 3 * 64];
        sample_roi(
            &frame,
            &roi,
            8,
            false,
            1.0,
            0.0,
            Planes::nchw(&mut plain, 8),
        );
        sample_roi(
            &frame,
            &roi,
            8,
            true,
            1.0,
            0.0,
            Planes::nchw(&mut mirrored, 8),
        );
        for row in 0..24 {
            for x in 0..8 {
                let (a, b) = (plain[row * 8 + x], mirrored[row * 8 + 7 - x]);
                assert!((a - b).abs() < 1e-3, "row {row} x {x}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn put_writes_luma_and_the_shared_chroma_sample() {
        let color = YuvColor::bt709();
        for chroma in [Chroma::Planar, Chroma::Interleaved] {
            let (mut planes, strides) = yuv_planes(chroma, 7, 5, 2, |_, _| 50, [128; 2]);
            let before = planes.clone();
            let (p0, rest) = planes.split_at_mut(1);
            let (p1, p2) = rest.split_at_mut(1);
            let mut frame = FrameMut::with_planes(
                7,
                5,
                PixelFormat::Yuv420(chroma, color),
                [&mut p0[0], &mut p1[0], &mut p2[0]],
                strides,
            );
            let value = frame.encode([255, 48, 48]);
            frame.put(6, 4, value);
            frame.put(7, 4, value);
            frame.put(-1, 0, value);
            assert_eq!(planes[0][4 * strides[0] + 6], value[0]);
            let (u, v) = match chroma {
                Chroma::Planar => (planes[1][2 * strides[1] + 3], planes[2][2 * strides[2] + 3]),
                Chroma::Interleaved => {
                    (planes[1][2 * strides[1] + 6], planes[1][2 * strides[1] + 7])
                }
            };
            assert_eq!([u, v], [value[1], value[2]], "{chroma:?}");
            // Exactly one luma byte and one chroma sample changed.
            let changed: usize = planes
                .iter()
                .zip(&before)
                .map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x != y).count())
                .sum();
            assert_eq!(changed, 3, "{chroma:?}");
        }
    }

    #[test]
    fn owned_copy_drops_padding_and_keeps_pixels() {
        let data = gradient(5, 3, PixelLayout::Bgr, 20);
        let frame = Frame::new(&data, 5, 3, 20, PixelLayout::Bgr);
        let mut copy = OwnedFrame::default();
        assert!(copy.as_frame().is_none());
        copy.fill_from(&frame);
        let back = copy.as_frame().unwrap();
        assert_eq!(back.plane(0).1, 15);
        for y in 0..3 {
            assert_eq!(
                back.plane(0).0[y * 15..y * 15 + 15],
                data[y * 20..y * 20 + 15]
            );
        }
        let (planes, strides) = yuv_planes(
            Chroma::Interleaved,
            3,
            3,
            4,
            |x, y| (x + 3 * y) as u8,
            [7, 9],
        );
        let nv12 = yuv_frame(
            &planes,
            strides,
            (3, 3),
            Chroma::Interleaved,
            YuvColor::bt601(),
        );
        copy.fill_from(&nv12);
        let back = copy.as_frame().unwrap();
        assert_eq!(back.plane(0), (&[0u8, 1, 2, 3, 4, 5, 6, 7, 8][..], 3));
        assert_eq!(back.plane(1), (&[7u8, 9, 7, 9, 7, 9, 7, 9][..], 4));
        assert!(back.plane(2).0.is_empty());
    }
}
