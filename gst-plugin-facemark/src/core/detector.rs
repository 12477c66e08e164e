//! BlazeFace short-range decoding: anchors, box/keypoint regression, weighted NMS.
//!
//! Model I/O: input `[1, 3, 128, 128]` RGB in `[-1, 1]` of the frame letterboxed to a square;
//! outputs `regressors` `[1, 896, 16]` and `classificators` `[1, 896, 1]` (logits).

use super::geometry::{Roi, iou, rotation};

pub const INPUT_SIZE: usize = 128;
pub const NUM_ANCHORS: usize = 896;
pub const NUM_VALUES: usize = 16;
pub const NUM_KEYPOINTS: usize = 6;
/// Weighted non-maximum suppression merges candidates overlapping more than this.
pub const NMS_IOU: f32 = 0.3;

/// Keypoint indices of a detection.
pub const KP_RIGHT_EYE: usize = 0;
pub const KP_LEFT_EYE: usize = 1;

/// Anchor centres in normalised input coordinates.
///
/// Strides 8, 16, 16, 16 with two anchors per layer and cell: 16x16 cells x 2 at stride 8, then
/// the three stride-16 layers share their 8x8 cells (6 anchors per cell). Anchor size is 1.
pub fn anchors() -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(NUM_ANCHORS);
    for (cells, per_cell) in [(16usize, 2usize), (8, 6)] {
        for y in 0..cells {
            for x in 0..cells {
                let a = [
                    (x as f32 + 0.5) / cells as f32,
                    (y as f32 + 0.5) / cells as f32,
                ];
                out.extend(std::iter::repeat_n(a, per_cell));
            }
        }
    }
    debug_assert_eq!(out.len(), NUM_ANCHORS);
    out
}

/// One detected face, in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub score: f32,
    /// `[xmin, ymin, xmax, ymax]`
    pub bbox: [f32; 4],
    /// right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
    pub keypoints: [[f32; 2]; NUM_KEYPOINTS],
}

impl Detection {
    /// The landmark model's region: the box centre, a square of 1.5 x the longer box side,
    /// turned so that the eye-to-eye line is horizontal.
    pub fn landmark_roi(&self) -> Roi {
        let [x0, y0, x1, y1] = self.bbox;
        let r = self.keypoints[KP_RIGHT_EYE];
        let l = self.keypoints[KP_LEFT_EYE];
        Roi {
            cx: 0.5 * (x0 + x1),
            cy: 0.5 * (y0 + y1),
            side: 1.5 * (x1 - x0).max(y1 - y0),
            angle: rotation((r[0], r[1]), (l[0], l[1])),
        }
    }
}

/// The letterbox the detector sees: the frame centred in a square of its longer side.
pub fn letterbox(width: usize, height: usize) -> Roi {
    Roi {
        cx: width as f32 / 2.0,
        cy: height as f32 / 2.0,
        side: width.max(height) as f32,
        angle: 0.0,
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

/// Decodes the raw outputs into `out` (cleared first), best first, after weighted NMS.
/// `candidates` is scratch space kept by the caller to avoid allocating per frame.
pub fn decode(
    regressors: &[f32],
    logits: &[f32],
    anchors: &[[f32; 2]],
    min_score: f32,
    letterbox: &Roi,
    candidates: &mut Vec<Detection>,
    out: &mut Vec<Detection>,
) {
    assert_eq!(regressors.len(), NUM_ANCHORS * NUM_VALUES);
    assert_eq!(logits.len(), NUM_ANCHORS);
    candidates.clear();
    out.clear();
    let size = INPUT_SIZE as f32;
    // Normalised letterbox coordinates -> frame pixels (the letterbox is never rotated).
    let px = |nx: f32, ny: f32| {
        [
            letterbox.cx + (nx - 0.5) * letterbox.side,
            letterbox.cy + (ny - 0.5) * letterbox.side,
        ]
    };
    for (i, (&logit, anchor)) in logits.iter().zip(anchors).enumerate() {
        let score = sigmoid(logit);
        if score < min_score {
            continue;
        }
        let r = &regressors[i * NUM_VALUES..(i + 1) * NUM_VALUES];
        let (cx, cy) = (r[0] / size + anchor[0], r[1] / size + anchor[1]);
        let (w, h) = (r[2] / size, r[3] / size);
        let p0 = px(cx - w / 2.0, cy - h / 2.0);
        let p1 = px(cx + w / 2.0, cy + h / 2.0);
        let mut keypoints = [[0.0; 2]; NUM_KEYPOINTS];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = px(
                r[4 + 2 * k] / size + anchor[0],
                r[5 + 2 * k] / size + anchor[1],
            );
        }
        candidates.push(Detection {
            score,
            bbox: [p0[0], p0[1], p1[0], p1[1]],
            keypoints,
        });
    }
    weighted_nms(candidates, NMS_IOU, out);
}

/// Weighted non-maximum suppression: the best remaining candidate absorbs every candidate that
/// overlaps it by more than `threshold`; the merged box and keypoints are the score-weighted
/// mean of the group, the score is the best one's. Consumes `candidates`.
pub fn weighted_nms(candidates: &mut Vec<Detection>, threshold: f32, out: &mut Vec<Detection>) {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    while let Some(best) = candidates.first().copied() {
        let mut sum_w = 0.0f32;
        let mut bbox = [0.0f32; 4];
        let mut keypoints = [[0.0f32; 2]; NUM_KEYPOINTS];
        candidates.retain(|c| {
            if iou(&best.bbox, &c.bbox) > threshold {
                sum_w += c.score;
                for (acc, v) in bbox.iter_mut().zip(&c.bbox) {
                    *acc += c.score * v;
                }
                for (acc, kp) in keypoints.iter_mut().zip(&c.keypoints) {
                    acc[0] += c.score * kp[0];
                    acc[1] += c.score * kp[1];
                }
                false
            } else {
                true
            }
        });
        if sum_w <= 0.0 {
            // A degenerate (zero-area) best box overlaps nothing, not even itself.
            candidates.retain(|c| c != &best);
            out.push(best);
            continue;
        }
        bbox.iter_mut().for_each(|v| *v /= sum_w);
        keypoints.iter_mut().flatten().for_each(|v| *v /= sum_w);
        out.push(Detection {
            score: best.score,
            bbox,
            keypoints,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_layout() {
        let a = anchors();
        assert_eq!(a.len(), NUM_ANCHORS);
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[511], [15.5 / 16.0, 15.5 / 16.0]);
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518], [1.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[895], [7.5 / 8.0, 7.5 / 8.0]);
    }

    fn raw_with(hits: &[(usize, f32, [f32; 4])]) -> (Vec<f32>, Vec<f32>) {
        let mut reg = vec![0.0; NUM_ANCHORS * NUM_VALUES];
        let mut logits = vec![-20.0; NUM_ANCHORS];
        for &(i, logit, [dx, dy, w, h]) in hits {
            logits[i] = logit;
            reg[i * 16..i * 16 + 4].copy_from_slice(&[dx, dy, w, h]);
            // eyes 10 px left/right of the centre
            reg[i * 16 + 4..i * 16 + 8].copy_from_slice(&[dx - 10.0, dy, dx + 10.0, dy]);
        }
        (reg, logits)
    }

    #[test]
    fn decodes_one_box_into_frame_pixels() {
        let anchors = anchors();
        // anchor 512 sits at (8, 8) in the 128 input
        let (reg, logits) = raw_with(&[(512, 3.0, [2.0, 4.0, 32.0, 16.0])]);
        // 256x128 frame: letterbox side 256, a factor of 2 from input pixels
        let lb = letterbox(256, 128);
        let (mut cands, mut out) = (Vec::new(), Vec::new());
        decode(&reg, &logits, &anchors, 0.5, &lb, &mut cands, &mut out);
        assert_eq!(out.len(), 1);
        let d = out[0];
        assert!((d.score - 1.0 / (1.0 + (-3.0f32).exp())).abs() < 1e-6);
        // centre in input px (10, 12) -> frame (20, 24 - 64) since the square is centred
        let expect = [20.0 - 32.0, -40.0 - 16.0, 20.0 + 32.0, -40.0 + 16.0];
        for (got, want) in d.bbox.iter().zip(expect) {
            assert!((got - want).abs() < 1e-3, "{:?}", d.bbox);
        }
        assert!((d.keypoints[0][0] - 0.0).abs() < 1e-3);
        assert!((d.keypoints[1][0] - 40.0).abs() < 1e-3);
        let roi = d.landmark_roi();
        assert!((roi.side - 96.0).abs() < 1e-3 && roi.angle.abs() < 1e-6);
    }

    #[test]
    fn low_scores_are_dropped() {
        let anchors = anchors();
        let (reg, logits) = raw_with(&[(100, -1.0, [0.0, 0.0, 10.0, 10.0])]);
        let (mut cands, mut out) = (Vec::new(), Vec::new());
        decode(
            &reg,
            &logits,
            &anchors,
            0.5,
            &letterbox(128, 128),
            &mut cands,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn nms_merges_overlaps_and_keeps_separate_faces() {
        let anchors = anchors();
        // 512 and 513 share an anchor: same face, slightly different boxes; 895 is far away.
        let (reg, logits) = raw_with(&[
            (512, 4.0, [0.0, 0.0, 20.0, 20.0]),
            (513, 2.0, [2.0, 0.0, 20.0, 20.0]),
            (895, 1.0, [0.0, 0.0, 20.0, 20.0]),
        ]);
        let (mut cands, mut out) = (Vec::new(), Vec::new());
        decode(
            &reg,
            &logits,
            &anchors,
            0.5,
            &letterbox(128, 128),
            &mut cands,
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].score > out[1].score);
        let (w1, w2) = (1.0 / (1.0 + (-4.0f32).exp()), 1.0 / (1.0 + (-2.0f32).exp()));
        let cx = (w1 * 8.0 + w2 * 10.0) / (w1 + w2);
        assert!((0.5 * (out[0].bbox[0] + out[0].bbox[2]) - cx).abs() < 1e-3);
        assert!((out[1].bbox[0] - 110.0).abs() < 1e-3);
    }
}
