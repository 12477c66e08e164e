//! Frames (packed RGB family, planar I420, semi-planar NV12): sampling into model tensors and
//! pixel access for drawing.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod color;
mod sample;
#[cfg(test)]
mod tests;

pub use color::YuvColor;
pub use sample::sample_roi;

/// Byte layout of one packed pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelLayout {
    /// Red, green, blue, alpha.
    Rgba,
    /// Blue, green, red, alpha.
    Bgra,
    /// Red, green, blue, an unused byte.
    Rgbx,
    /// Blue, green, red, an unused byte.
    Bgrx,
    /// Red, green, blue; 3 bytes a pixel.
    Rgb,
    /// Blue, green, red; 3 bytes a pixel.
    Bgr,
}

impl PixelLayout {
    /// Bytes of one pixel: 3 or 4.
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
        let c = |plane, offset, step, shift| Component { plane, offset, step, shift };
        match *self {
            PixelFormat::Packed(layout) => {
                let bpp = layout.bytes_per_pixel();
                layout.rgb_offsets().map(|o| c(0, o, bpp, 0))
            }
            PixelFormat::Yuv420(Chroma::Planar, _) => [c(0, 0, 1, 0), c(1, 0, 1, 1), c(2, 0, 1, 1)],
            PixelFormat::Yuv420(Chroma::Interleaved, _) => [c(0, 0, 1, 0), c(1, 0, 2, 1), c(1, 1, 2, 1)],
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
            (PixelFormat::Yuv420(Chroma::Interleaved, _), _) => (2 * width.div_ceil(2), height.div_ceil(2)),
        }
    }
}

/// A frame's planes must hold its rows: callers (GstVideoFrame, tests) guarantee it.
fn assert_fits(lens: [usize; 3], strides: [usize; 3], width: usize, height: usize, format: &PixelFormat) {
    for p in 0..format.planes() {
        let (row, rows) = format.plane_extent(p, width, height);
        let (len, stride) = (lens[p], strides[p]);
        assert!(stride >= row, "plane {p}: stride {stride} shorter than a row of {row} bytes");
        assert!(rows == 0 || len >= stride * (rows - 1) + row, "plane {p}: {len} bytes cannot hold {width}x{height}");
    }
}

/// A read-only frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// How the bytes encode the pixels.
    pub format: PixelFormat,
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
}

/// A writable frame.
#[derive(Debug)]
pub struct FrameMut<'a> {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// How the bytes encode the pixels.
    pub format: PixelFormat,
    planes: [&'a mut [u8]; 3],
    strides: [usize; 3],
    /// `format.components()`, looked up once rather than per drawn pixel.
    components: [Component; 3],
}

impl<'a> Frame<'a> {
    /// A packed frame, rows `stride` bytes apart.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize, layout: PixelLayout) -> Self {
        Self::with_planes(width, height, PixelFormat::Packed(layout), [data, &[], &[]], [stride, 0, 0])
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
        Frame { width, height, format, planes, strides }
    }

    /// Plane `plane`'s bytes and stride.
    pub fn plane(&self, plane: usize) -> (&'a [u8], usize) {
        (self.planes[plane], self.strides[plane])
    }
}

impl<'a> FrameMut<'a> {
    /// A packed frame, rows `stride` bytes apart.
    pub fn new(data: &'a mut [u8], width: usize, height: usize, stride: usize, layout: PixelLayout) -> Self {
        Self::with_planes(width, height, PixelFormat::Packed(layout), [data, &mut [], &mut []], [stride, 0, 0])
    }

    /// Any format: `planes` and `strides` as GStreamer orders them (unused entries empty, 0).
    pub fn with_planes(
        width: usize,
        height: usize,
        format: PixelFormat,
        planes: [&'a mut [u8]; 3],
        strides: [usize; 3],
    ) -> Self {
        assert_fits([planes[0].len(), planes[1].len(), planes[2].len()], strides, width, height, &format);
        FrameMut { width, height, format, planes, strides, components: format.components() }
    }

    /// A read-only view of the same pixels.
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
    /// The values, from value (0, 0, 0) on.
    pub data: &'a mut [f32],
    /// Distance between the starts of consecutive channel planes, in floats.
    pub plane: usize,
    /// Distance between the starts of consecutive rows of a plane, in floats.
    pub row: usize,
}

impl<'a> Planes<'a> {
    /// Three `n` x `n` planes one after the other.
    pub fn nchw(data: &'a mut [f32], n: usize) -> Planes<'a> {
        Planes { data, plane: n * n, row: n }
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
