//! Iris landmarks from the older iris model (`iris_landmark.onnx`, used with `face_landmark.onnx`
//! when the attention model is not installed): its crops, schedule and decoding.
//!
//! Model I/O (checked with onnxruntime on the tflite2onnx conversion): input `input_1`
//! `[1, 3, 64, 64]` RGB in `[0, 1]` of a square eye crop; outputs
//! `output_eyes_contours_and_brows` `[1, 213]` (71 points, unused here) and `output_iris`
//! `[1, 15]`: 5 points x, y, z in crop pixels, the iris centre first, then 4 points on its edge.
//!
//! The crop is centred between two eye corners, turned along them, 2.3 x their distance wide.
//! The model expects the eye at mesh corners 33 -> 133 (the subject's right eye, left in an
//! unmirrored image) as it is, and the other eye (362 -> 263) mirrored horizontally.
//! In the 478-point output the subject's right iris is 468..=472, the left one 473..=477.

use super::geometry::{Roi, rotation};

/// Side of the square eye crop the model takes, in pixels.
pub const INPUT_SIZE: usize = 64;
/// Points per iris: the centre, then 4 on its edge.
pub const IRIS_POINTS: usize = 5;
/// The length of the iris output: x, y, z of each point.
pub const OUTPUT_LEN: usize = IRIS_POINTS * 3;
/// The model output holding the iris points.
pub const IRIS_OUTPUT: &str = "output_iris";
/// The eye crop's side as a multiple of the distance between the eye corners.
pub const ROI_SCALE: f32 = 2.3;
/// (start, end) mesh corners and whether the crop is mirrored.
pub const RIGHT_EYE: (usize, usize, bool) = (33, 133, false);
/// The subject's left eye: corners 362 -> 263, sampled mirrored (the model knows right eyes).
pub const LEFT_EYE: (usize, usize, bool) = (362, 263, true);

/// The eye crop for `eye` ([`RIGHT_EYE`] or [`LEFT_EYE`]) of a face's mesh `points` (frame
/// pixels): centred between the two corners, turned along them, [`ROI_SCALE`] x their distance
/// wide. The mirroring flag is not used here: pass it to the sampling and to [`decode`].
pub fn eye_roi(points: &[[f32; 3]], (a, b, _): (usize, usize, bool)) -> Roi {
    let (p, q) = (points[a], points[b]);
    let d = ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)).sqrt();
    Roi {
        cx: 0.5 * (p[0] + q[0]),
        cy: 0.5 * (p[1] + q[1]),
        side: ROI_SCALE * d,
        angle: rotation((p[0], p[1]), (q[0], q[1])),
    }
}

/// Whether the eye `side` (0 right, 1 left) of a face tracked for `tracked_frames` frames runs
/// the model when it runs every `interval` frames: each eye once per interval, the left eye half
/// an interval after the right one, so the two runs fall on different frames.
pub fn due(tracked_frames: u32, side: usize, interval: u32) -> bool {
    let interval = interval.max(1);
    let offset = if side == 0 { 0 } else { interval / 2 };
    (tracked_frames % interval + offset).is_multiple_of(interval)
}

/// Maps the iris output (crop pixels) to frame pixels.
pub fn decode(raw: &[f32], roi: &Roi, mirrored: bool, out: &mut [[f32; 3]; IRIS_POINTS]) {
    let size = INPUT_SIZE as f32;
    for (p, r) in out.iter_mut().zip(raw.chunks_exact(3)) {
        let u = r[0] / size - 0.5;
        let (x, y) = roi.to_frame(if mirrored { -u } else { u }, r[1] / size - 0.5);
        *p = [x, y, r[2] / size * roi.side];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_decode_flips_x() {
        let roi = Roi { cx: 10.0, cy: 10.0, side: 64.0, angle: 0.0 };
        let raw = [40.0, 32.0, 0.0, 32.0, 32.0, 0.0, 32.0, 32.0, 0.0, 32.0, 32.0, 0.0, 32.0, 32.0, 0.0];
        let mut out = [[0.0; 3]; 5];
        decode(&raw, &roi, false, &mut out);
        assert_eq!(out[0][0], 18.0);
        decode(&raw, &roi, true, &mut out);
        assert_eq!(out[0][0], 2.0);
    }

    #[test]
    fn each_eye_runs_once_per_interval_and_not_with_the_other() {
        for frame in 0..10 {
            assert!(due(frame, 0, 1) && due(frame, 1, 1), "interval 1: every frame");
            assert!(due(frame, 0, 0) && due(frame, 1, 0), "0 counts as 1");
        }
        for interval in 2..7 {
            for side in 0..2 {
                let runs: Vec<u32> = (0..3 * interval).filter(|&f| due(f, side, interval)).collect();
                assert_eq!(runs.len(), 3, "interval {interval}, eye {side}: {runs:?}");
                assert!(runs.windows(2).all(|w| w[1] - w[0] == interval), "{runs:?}");
            }
            assert!(
                (0..3 * interval).all(|f| !(due(f, 0, interval) && due(f, 1, interval))),
                "interval {interval}: both eyes on one frame"
            );
        }
    }

    #[test]
    fn eye_roi_is_centred_and_scaled() {
        let mut pts = vec![[0.0f32; 3]; 468];
        pts[33] = [100.0, 50.0, 0.0];
        pts[133] = [120.0, 50.0, 0.0];
        let roi = eye_roi(&pts, RIGHT_EYE);
        assert_eq!((roi.cx, roi.cy, roi.angle), (110.0, 50.0, 0.0));
        assert!((roi.side - 46.0).abs() < 1e-4);
    }
}
