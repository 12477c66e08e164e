//! Face Mesh decoding: 468 points from the landmark model, and the next frame's region.
//!
//! Model I/O: input `[1, 3, 192, 192]` RGB in `[0, 1]` of the rotated square ROI; outputs
//! `conv2d_20` `[1, 1404, 1, 1]` (x, y, z per point in crop pixels; z shares x's scale) and
//! `conv2d_30` `[1, 1, 1, 1]` (face presence logit).

use super::geometry::{Roi, rotation};

/// Side of the square input crop, in pixels.
pub const INPUT_SIZE: usize = 192;
/// Points of the face mesh (MediaPipe Face Mesh numbering).
pub const NUM_LANDMARKS: usize = 468;
/// Outer eye corners used to orient the tracked region (MediaPipe mesh indices).
pub const RIGHT_EYE_OUTER: usize = 33;
/// The subject's left outer eye corner (mesh index).
pub const LEFT_EYE_OUTER: usize = 263;
/// The tracked region is this much larger than the landmarks' extent.
pub const ROI_SCALE: f32 = 1.5;

/// Face presence probability from the model's logit.
pub fn presence(logit: f32) -> f32 {
    1.0 / (1.0 + (-logit.clamp(-100.0, 100.0)).exp())
}

/// Maps the raw model output (crop pixels) to frame pixels; z is scaled like x.
pub fn decode(raw: &[f32], roi: &Roi, out: &mut [[f32; 3]]) {
    assert!(raw.len() >= 3 * out.len());
    let size = INPUT_SIZE as f32;
    for (p, r) in out.iter_mut().zip(raw.chunks_exact(3)) {
        let (x, y) = roi.to_frame(r[0] / size - 0.5, r[1] / size - 0.5);
        *p = [x, y, r[2] / size * roi.side];
    }
}

/// The region to look at in the next frame: oriented along the outer eye corners, centred on the
/// landmarks' extent measured along that orientation, ROI_SCALE x its longer side.
pub fn next_roi(points: &[[f32; 3]]) -> Roi {
    let r = points[RIGHT_EYE_OUTER];
    let l = points[LEFT_EYE_OUTER];
    let angle = rotation((r[0], r[1]), (l[0], l[1]));
    let (s, c) = angle.sin_cos();
    let (mut u0, mut v0, mut u1, mut v1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points {
        // coordinates along the rotated axes
        let u = p[0] * c + p[1] * s;
        let v = -p[0] * s + p[1] * c;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    let (um, vm) = (0.5 * (u0 + u1), 0.5 * (v0 + v1));
    Roi { cx: um * c - vm * s, cy: um * s + vm * c, side: ROI_SCALE * (u1 - u0).max(v1 - v0), angle }
}

/// Axis-aligned bounding box `[xmin, ymin, xmax, ymax]` of the points.
pub fn bounds(points: &[[f32; 3]]) -> [f32; 4] {
    points.iter().fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, p| {
        [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_maps_crop_to_frame() {
        let roi = Roi { cx: 100.0, cy: 100.0, side: 96.0, angle: 0.0 };
        let raw = [96.0, 96.0, 0.0, 0.0, 192.0, 19.2];
        let mut out = [[0.0; 3]; 2];
        decode(&raw, &roi, &mut out);
        assert_eq!(out[0], [100.0, 100.0, 0.0]);
        assert!((out[1][0] - 52.0).abs() < 1e-4 && (out[1][1] - 148.0).abs() < 1e-4);
        assert!((out[1][2] - 9.6).abs() < 1e-4);
    }

    #[test]
    fn decode_rotates_back() {
        let roi = Roi { cx: 0.0, cy: 0.0, side: 192.0, angle: std::f32::consts::FRAC_PI_2 };
        let raw = [192.0, 96.0, 0.0];
        let mut out = [[0.0; 3]; 1];
        decode(&raw, &roi, &mut out);
        // crop +x is frame +y after a quarter turn
        assert!(out[0][0].abs() < 1e-3 && (out[0][1] - 96.0).abs() < 1e-3);
    }

    #[test]
    fn next_roi_of_a_tilted_square_face() {
        let angle = 0.4f32;
        let roi = Roi { cx: 300.0, cy: 200.0, side: 150.0, angle };
        // synthetic mesh: points spread over a 100x100 square of the rotated frame
        let mut pts = vec![[0.0f32; 3]; NUM_LANDMARKS];
        for (i, p) in pts.iter_mut().enumerate() {
            let u = (i % 22) as f32 / 21.0 - 0.5;
            let v = (i / 22) as f32 / 21.0 - 0.5;
            let (x, y) = Roi { side: 100.0, ..roi }.to_frame(u, v);
            *p = [x, y, 0.0];
        }
        let (x, y) = Roi { side: 100.0, ..roi }.to_frame(-0.3, -0.2);
        pts[RIGHT_EYE_OUTER] = [x, y, 0.0];
        let (x, y) = Roi { side: 100.0, ..roi }.to_frame(0.3, -0.2);
        pts[LEFT_EYE_OUTER] = [x, y, 0.0];
        let next = next_roi(&pts);
        assert!((next.angle - angle).abs() < 1e-4, "{next:?}");
        assert!((next.side - 150.0).abs() < 1.0, "{next:?}");
        assert!((next.cx - 300.0).abs() < 1.0 && (next.cy - 200.0).abs() < 3.0, "{next:?}");
    }

    #[test]
    fn presence_is_a_probability() {
        assert!(presence(-1000.0) < 1e-6);
        assert!((presence(0.0) - 0.5).abs() < 1e-6);
        assert!(presence(10.0) > 0.99);
    }
}
