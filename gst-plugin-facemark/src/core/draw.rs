//! Drawing faces onto frames (any [`super::image::PixelFormat`]).

use super::image::FrameMut;
use super::mesh;
use super::tracker::Face;

/// What to draw (the element's `draw` flags use the same bits).
pub mod flags {
    /// The face's box ([`Face::bbox`](crate::core::tracker::Face::bbox), the landmarks' bounds), 2 px wide.
    pub const BOX: u32 = 1 << 0;
    /// The detection's 6 keypoints (on frames the detector ran) and every mesh point, as red discs.
    pub const KEYPOINTS: u32 = 1 << 1;
    /// The mesh triangles' edges.
    pub const TESSELATION: u32 = 1 << 2;
    /// Face oval, lips, eyes and eyebrows (see [`mesh::CONTOURS`](super::mesh::CONTOURS)).
    pub const CONTOURS: u32 = 1 << 3;
    /// A circle around each iris found.
    pub const IRISES: u32 = 1 << 4;
    /// What is drawn unless told otherwise: mesh, contours and irises.
    pub const DEFAULT: u32 = TESSELATION | CONTOURS | IRISES;
}

/// MediaPipe's detection style: white-ish box (224, 224, 224) 2 px, red keypoints radius 2.
pub const BOX_COLOR: [u8; 3] = [224, 224, 224];
/// RGB colour of the keypoint discs.
pub const KEYPOINT_COLOR: [u8; 3] = [255, 0, 0];
/// Iris style: the subject's right iris red, left iris green (as its eye contour).
pub const RIGHT_IRIS_COLOR: [u8; 3] = [255, 48, 48];
/// RGB colour of the subject's left iris.
pub const LEFT_IRIS_COLOR: [u8; 3] = [48, 255, 48];

impl FrameMut<'_> {
    /// A square of `thickness` px around (x, y) set to `value` (see [`FrameMut::encode`]).
    fn brush(&mut self, x: i32, y: i32, thickness: u32, value: [u8; 3]) {
        let t = thickness.max(1) as i32;
        let lo = -(t - 1) / 2;
        for dy in lo..lo + t {
            for dx in lo..lo + t {
                self.put(x + dx, y + dy, value);
            }
        }
    }

    /// A straight line of `thickness` px (square brush), clipped to the frame.
    pub fn line(&mut self, p0: [f32; 2], p1: [f32; 2], thickness: u32, rgb: [u8; 3]) {
        let (w, h) = (self.width as f32, self.height as f32);
        let t = thickness as f32;
        if !p0.iter().chain(&p1).all(|v| v.is_finite())
            || (p0[0] < -t && p1[0] < -t)
            || (p0[1] < -t && p1[1] < -t)
            || (p0[0] > w + t && p1[0] > w + t)
            || (p0[1] > h + t && p1[1] > h + t)
        {
            return;
        }
        let value = self.encode(rgb);
        let (dx, dy) = (p1[0] - p0[0], p1[1] - p0[1]);
        // Bounded so that wild coordinates cannot make the loop long.
        let steps = dx.abs().max(dy.abs()).ceil().min(4.0 * (w + h)) as i32;
        if steps == 0 {
            self.brush(p0[0].floor() as i32, p0[1].floor() as i32, thickness, value);
            return;
        }
        let (sx, sy) = (dx / steps as f32, dy / steps as f32);
        for i in 0..=steps {
            let x = p0[0] + sx * i as f32;
            let y = p0[1] + sy * i as f32;
            self.brush(x.floor() as i32, y.floor() as i32, thickness, value);
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, c: [f32; 2], radius: f32, rgb: [u8; 3]) {
        if !c[0].is_finite() || !c[1].is_finite() {
            return;
        }
        let value = self.encode(rgb);
        let r = radius.max(0.5);
        let (x0, x1) = ((c[0] - r).floor() as i32, (c[0] + r).ceil() as i32);
        let (y0, y1) = ((c[1] - r).floor() as i32, (c[1] + r).ceil() as i32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (fx, fy) = (x as f32 + 0.5 - c[0], y as f32 + 0.5 - c[1]);
                if fx * fx + fy * fy <= r * r {
                    self.put(x, y, value);
                }
            }
        }
    }

    /// An unfilled circle outline.
    pub fn circle(&mut self, c: [f32; 2], radius: f32, thickness: u32, rgb: [u8; 3]) {
        let n = ((radius * 2.0 * std::f32::consts::PI) / 2.0).clamp(8.0, 256.0) as usize;
        let at = |k: usize| {
            let a = k as f32 / n as f32 * 2.0 * std::f32::consts::PI;
            [c[0] + radius * a.cos(), c[1] + radius * a.sin()]
        };
        for k in 0..n {
            self.line(at(k), at(k + 1), thickness, rgb);
        }
    }
}

/// Draws one face as `what` (see [`flags`]) asks.
pub fn draw_face(frame: &mut FrameMut, face: &Face, what: u32) {
    let pts = &face.landmarks;
    let xy = |i: u16| -> [f32; 2] {
        let p = pts[i as usize];
        [p[0], p[1]]
    };
    if what & flags::TESSELATION != 0 && pts.len() >= 468 {
        for &(a, b) in mesh::tesselation() {
            frame.line(xy(a), xy(b), mesh::TESSELATION_THICKNESS, mesh::TESSELATION_COLOR);
        }
    }
    if what & flags::CONTOURS != 0 && pts.len() >= 468 {
        for group in mesh::CONTOURS {
            for line in group.polylines {
                for w in line.windows(2) {
                    frame.line(xy(w[0]), xy(w[1]), mesh::CONTOUR_THICKNESS, group.color);
                }
            }
        }
    }
    if what & flags::IRISES != 0 {
        for (iris, color) in [(&face.right_iris, RIGHT_IRIS_COLOR), (&face.left_iris, LEFT_IRIS_COLOR)] {
            if let Some(iris) = iris {
                // iris[0] is the centre, iris[1..5] lie on its edge
                let c = [iris[0][0], iris[0][1]];
                let r =
                    iris[1..].iter().map(|p| ((p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)).sqrt()).sum::<f32>() / 4.0;
                frame.circle(c, r, 2, color);
            }
        }
    }
    if what & flags::BOX != 0 {
        let [x0, y0, x1, y1] = face.bbox;
        frame.line([x0, y0], [x1, y0], 2, BOX_COLOR);
        frame.line([x1, y0], [x1, y1], 2, BOX_COLOR);
        frame.line([x1, y1], [x0, y1], 2, BOX_COLOR);
        frame.line([x0, y1], [x0, y0], 2, BOX_COLOR);
    }
    if what & flags::KEYPOINTS != 0 {
        if let Some(det) = &face.detection {
            for kp in &det.keypoints {
                frame.disc(*kp, 2.0, KEYPOINT_COLOR);
            }
        }
        if pts.len() >= 468 {
            for p in pts.iter() {
                frame.disc([p[0], p[1]], 1.0, KEYPOINT_COLOR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::image::PixelLayout;
    use super::*;

    #[test]
    fn lines_are_clipped_and_coloured() {
        let mut buf = vec![0u8; 10 * 40];
        let mut f = FrameMut::new(&mut buf, 10, 10, 40, PixelLayout::Bgrx);
        f.line([-5.0, 5.0], [50.0, 5.0], 1, [1, 2, 3]);
        f.line([1e30, 0.0], [f32::NAN, 3.0], 3, [9, 9, 9]);
        for x in 0..10 {
            assert_eq!(&buf[5 * 40 + x * 4..5 * 40 + x * 4 + 4], &[3, 2, 1, 0]);
        }
        assert!(buf[..5 * 40].iter().all(|v| *v == 0));
    }

    #[test]
    fn disc_and_thickness() {
        let mut buf = vec![0u8; 20 * 20 * 3];
        let mut f = FrameMut::new(&mut buf, 20, 20, 60, PixelLayout::Rgb);
        f.disc([10.0, 10.0], 2.0, [255, 0, 0]);
        f.line([0.0, 0.0], [0.0, 19.0], 2, [0, 255, 0]);
        assert_eq!(buf[10 * 60 + 10 * 3], 255);
        assert_eq!(buf[10 * 60 + 15 * 3], 0);
        // 2 px brush: columns 0 and 1
        assert_eq!(buf[5 * 60 + 1], 255);
        assert_eq!(buf[5 * 60 + 3 + 1], 255);
        assert_eq!(buf[5 * 60 + 6 + 1], 0);
    }
}
