//! Plane geometry shared by the detector and the landmark stages.

/// A square region of interest in frame pixels, rotated by `angle` (radians, clockwise on
/// screen because y points down) around its centre.
///
/// Normalised crop coordinates (`u`, `v` in `[-0.5, 0.5]`, the crop's own axes) map to frame
/// pixels as `centre + side * R(angle) * (u, v)`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Roi {
    /// Centre x, frame pixels.
    pub cx: f32,
    /// Centre y, frame pixels.
    pub cy: f32,
    /// Side of the square, frame pixels.
    pub side: f32,
    /// Rotation in radians, clockwise on screen.
    pub angle: f32,
}

impl Roi {
    /// Frame position of normalised crop coordinates.
    #[inline]
    pub fn to_frame(&self, u: f32, v: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        (self.cx + self.side * (u * c - v * s), self.cy + self.side * (u * s + v * c))
    }

    /// Normalised crop coordinates of a frame position (inverse of [`Roi::to_frame`]).
    #[inline]
    pub fn from_frame(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = ((x - self.cx) / self.side, (y - self.cy) / self.side);
        (dx * c + dy * s, -dx * s + dy * c)
    }

    /// Axis-aligned bounding box `[xmin, ymin, xmax, ymax]` of the (rotated) square.
    pub fn bounds(&self) -> [f32; 4] {
        let (s, c) = self.angle.sin_cos();
        let half = 0.5 * self.side * (c.abs() + s.abs());
        [self.cx - half, self.cy - half, self.cx + half, self.cy + half]
    }
}

/// Rotation that makes the line from `from` to `to` horizontal, pointing right (MediaPipe's
/// convention: `-atan2(-(dy), dx)` with y down), normalised to `[-pi, pi)`.
pub fn rotation(from: (f32, f32), to: (f32, f32)) -> f32 {
    normalize_radians(-(-(to.1 - from.1)).atan2(to.0 - from.0))
}

/// `a` (radians) wrapped into `[-pi, pi)`.
pub fn normalize_radians(a: f32) -> f32 {
    use std::f32::consts::PI;
    a - 2.0 * PI * ((a + PI) / (2.0 * PI)).floor()
}

/// Intersection over union of two `[xmin, ymin, xmax, ymax]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roi_round_trip() {
        let roi = Roi { cx: 100.0, cy: 50.0, side: 80.0, angle: 0.3 };
        let (x, y) = roi.to_frame(0.25, -0.1);
        let (u, v) = roi.from_frame(x, y);
        assert!((u - 0.25).abs() < 1e-5 && (v + 0.1).abs() < 1e-5);
        assert_eq!(roi.to_frame(0.0, 0.0), (100.0, 50.0));
    }

    #[test]
    fn rotation_follows_eye_line() {
        assert!(rotation((0.0, 0.0), (10.0, 0.0)).abs() < 1e-6);
        // Right eye higher than left eye on screen: the crop must turn clockwise (positive).
        let a = rotation((0.0, 0.0), (10.0, 10.0));
        assert!((a - std::f32::consts::FRAC_PI_4).abs() < 1e-5);
        let roi = Roi { cx: 0.0, cy: 0.0, side: 1.0, angle: a };
        let (x, y) = roi.to_frame(0.5, 0.0);
        assert!(x > 0.0 && y > 0.0);
    }

    #[test]
    fn normalize() {
        use std::f32::consts::PI;
        assert!((normalize_radians(3.0 * PI) - PI).abs() < 1e-5 || (normalize_radians(3.0 * PI) + PI).abs() < 1e-5);
        assert!((normalize_radians(0.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn iou_basics() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[20.0, 20.0, 30.0, 30.0]), 0.0);
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
    }
}
