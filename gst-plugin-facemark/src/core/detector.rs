//! BlazeFace short-range decoding: anchors, box/keypoint regression, weighted NMS.
//!
//! Model I/O: input `[1, 3, 128, 128]` RGB in `[-1, 1]` of the frame letterboxed to a square;
//! outputs `regressors` `[1, 896, 16]` and `classificators` `[1, 896, 1]` (logits).

use super::geometry::{Roi, iou, rotation};

/// Side of the square input image, in pixels.
pub const INPUT_SIZE: usize = 128;
/// Anchors (candidate boxes) the model scores, one output row each.
pub const NUM_ANCHORS: usize = 896;
/// Regressed values per anchor: box centre offset x, y, width, height, then x, y of each
/// keypoint, all in input pixels.
pub const NUM_VALUES: usize = 16;
/// Keypoints per detection (see [`Detection::keypoints`]).
pub const NUM_KEYPOINTS: usize = 6;
/// Weighted non-maximum suppression merges candidates overlapping more than this.
pub const NMS_IOU: f32 = 0.3;

/// Keypoint indices of a detection.
pub const KP_RIGHT_EYE: usize = 0;
/// Index of the subject's left eye in [`Detection::keypoints`].
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
                let a = [(x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32];
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
    /// The model's confidence, a probability in `[0, 1]` (sigmoid of its logit).
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
    Roi { cx: width as f32 / 2.0, cy: height as f32 / 2.0, side: width.max(height) as f32, angle: 0.0 }
}

/// The smallest face the detector finds, as a share of the side of the square it sees: measured
/// on the astronaut photo, a face 16 px wide in the 128 px input is found, one 12 px wide is not.
pub const SMALLEST_FACE: f32 = 1.0 / 8.0;

/// How many square tiles [`tile`] lays over a `width` x `height` frame: none for a nearly square
/// frame (its letterbox already sees it at the tile's scale), else enough that consecutive tiles
/// overlap by the smallest face the letterbox finds, so that every face it misses for being
/// small lies wholly inside some tile (and is seen there `longer / shorter` times larger).
pub fn tile_count(width: usize, height: usize) -> usize {
    let (long, short) = (width.max(height) as f32, width.min(height) as f32);
    if short <= 0.0 || long <= short * (1.0 + SMALLEST_FACE) {
        return 0;
    }
    // Tiles of the shorter side; the step between them leaves `long * SMALLEST_FACE` of overlap
    // (at least half a tile, for very long strips).
    let step = (short - long * SMALLEST_FACE).max(short / 2.0);
    1 + ((long - short) / step).ceil() as usize
}

/// Tile `index` (of [`tile_count`]) of a `width` x `height` frame: a square of the shorter side,
/// the tiles spread evenly from one end of the longer side to the other.
pub fn tile(width: usize, height: usize, index: usize) -> Roi {
    let (w, h) = (width as f32, height as f32);
    let count = tile_count(width, height).max(2);
    let at = index.min(count - 1) as f32 / (count - 1) as f32;
    let side = w.min(h);
    let centre = |long: f32| side / 2.0 + at * (long - side);
    let (cx, cy) = if width >= height { (centre(w), h / 2.0) } else { (w / 2.0, centre(h)) };
    Roi { cx, cy, side, angle: 0.0 }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

/// Decodes the raw outputs into `out` (cleared first), best first, after weighted NMS.
/// `letterbox` is the unrotated square the detector saw (the [`letterbox`] or a [`tile`]).
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
    let px =
        |nx: f32, ny: f32| [letterbox.cx + (nx - 0.5) * letterbox.side, letterbox.cy + (ny - 0.5) * letterbox.side];
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
            *kp = px(r[4 + 2 * k] / size + anchor[0], r[5 + 2 * k] / size + anchor[1]);
        }
        candidates.push(Detection { score, bbox: [p0[0], p0[1], p1[0], p1[1]], keypoints });
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
        out.push(Detection { score: best.score, bbox, keypoints });
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

    /// The frame's region `[x0, y0, x1, y1]` of a tile.
    fn span(t: &Roi) -> [f32; 4] {
        let r = t.side / 2.0;
        [t.cx - r, t.cy - r, t.cx + r, t.cy + r]
    }

    #[test]
    fn tiles_of_common_frames() {
        for square in [(512, 512), (1080, 1080), (1000, 1100), (1100, 1000)] {
            assert_eq!(tile_count(square.0, square.1), 0, "{square:?}");
        }
        assert_eq!(tile_count(0, 720), 0);
        assert_eq!(tile_count(1280, 720), 2);
        assert_eq!(span(&tile(1280, 720, 0)), [0.0, 0.0, 720.0, 720.0]);
        assert_eq!(span(&tile(1280, 720, 1)), [560.0, 0.0, 1280.0, 720.0]);
        assert_eq!(span(&tile(720, 1280, 1)), [0.0, 560.0, 720.0, 1280.0]);
        assert_eq!(tile_count(640, 480), 2);
        assert_eq!(tile_count(2560, 1080), 3);
        assert_eq!(span(&tile(2560, 1080, 1)), [740.0, 0.0, 1820.0, 1080.0]);
    }

    /// Every face the letterbox is too coarse for (narrower than 1/8 of the longer side), wherever
    /// it is, lies wholly inside a tile of the frame, and every tile lies inside the frame.
    #[test]
    fn tiles_hold_every_face_too_small_for_the_letterbox() {
        for (w, h) in [(1280, 720), (1920, 1080), (640, 480), (720, 1280), (2560, 1080), (3840, 600), (300, 40)] {
            let n = tile_count(w, h);
            assert!(n >= 2, "{w}x{h}");
            let tiles: Vec<[f32; 4]> = (0..n).map(|i| span(&tile(w, h, i))).collect();
            for t in &tiles {
                assert!(
                    t[0] >= 0.0 && t[1] >= 0.0 && t[2] <= w as f32 + 1e-3 && t[3] <= h as f32 + 1e-3,
                    "{w}x{h}: {t:?}"
                );
            }
            let long = w.max(h) as f32;
            // A face as large as the letterbox misses, along the longer side, a pixel at a time.
            let face = (long * SMALLEST_FACE).min(w.min(h) as f32 / 2.0);
            let mut at = 0.0;
            while at + face <= long {
                let inside = tiles.iter().any(|t| {
                    let (lo, hi) = if w >= h { (t[0], t[2]) } else { (t[1], t[3]) };
                    lo <= at && at + face <= hi
                });
                assert!(inside, "{w}x{h}: a face of {face} px at {at} is in no tile");
                at += 1.0;
            }
        }
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
        decode(&reg, &logits, &anchors, 0.5, &letterbox(128, 128), &mut cands, &mut out);
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
        decode(&reg, &logits, &anchors, 0.5, &letterbox(128, 128), &mut cands, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out[0].score > out[1].score);
        let (w1, w2) = (1.0 / (1.0 + (-4.0f32).exp()), 1.0 / (1.0 + (-2.0f32).exp()));
        let cx = (w1 * 8.0 + w2 * 10.0) / (w1 + w2);
        assert!((0.5 * (out[0].bbox[0] + out[0].bbox[2]) - cx).abs() < 1e-3);
        assert!((out[1].bbox[0] - 110.0).abs() < 1e-3);
    }
}
