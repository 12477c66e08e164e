//! Y'CbCr to R'G'B' and back, for one matrix and range.

/// The conversion between 8-bit Y'CbCr and R'G'B' for one matrix and range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvColor {
    /// R, G, B = `to_rgb` x (Y - y_black, U - 128, V - 128).
    pub(super) to_rgb: [[f32; 3]; 3],
    /// Y - y_black, U - 128, V - 128 = `to_yuv` x (R, G, B).
    to_yuv: [[f32; 3]; 3],
    pub(super) y_black: f32,
}

impl YuvColor {
    /// From the luma weights of red and blue (`kr`, `kb`) and the range: limited (video) range
    /// puts Y in 16..=235 and chroma in 16..=240, full range uses 0..=255 for both.
    pub fn new(kr: f32, kb: f32, full_range: bool) -> YuvColor {
        let kg = 1.0 - kr - kb;
        let (y_scale, c_scale, y_black) =
            if full_range { (1.0, 1.0, 0.0) } else { (255.0 / 219.0, 255.0 / 224.0, 16.0) };
        // R' = Y' + 2(1-kr) Pr, B' = Y' + 2(1-kb) Pb, G' = (Y' - kr R' - kb B') / kg.
        let (rv, bu) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb));
        let to_rgb = [
            [y_scale, 0.0, rv * c_scale],
            [y_scale, -kb * bu / kg * c_scale, -kr * rv / kg * c_scale],
            [y_scale, bu * c_scale, 0.0],
        ];
        let to_yuv = [
            [kr / y_scale, kg / y_scale, kb / y_scale],
            [-kr / bu / c_scale, -kg / bu / c_scale, (1.0 - kb) / bu / c_scale],
            [(1.0 - kr) / rv / c_scale, -kg / rv / c_scale, -kb / rv / c_scale],
        ];
        YuvColor { to_rgb, to_yuv, y_black }
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
    pub(super) fn black(&self) -> [f32; 3] {
        [self.y_black, 128.0, 128.0]
    }
}
