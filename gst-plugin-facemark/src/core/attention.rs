//! MediaPipe's 478-point face model with attention (`face_landmark_with_attention.tflite`, what
//! FaceMesh runs with `refine_landmarks`), as four ONNX parts joined by the math its three
//! custom TFLite ops did (Landmarks2TransformMatrix, TransformTensorBilinear and
//! TransformLandmarks, version 2).
//!
//! The trunk takes the 192x192 crop as the mesh model does and gives the 468-point mesh, the
//! presence logit and a 32-channel 48x48 feature map. Each head (the lips; each eye with its
//! iris) reads a 16x16 crop of that map, placed and turned along its region's mesh points
//! ([`Region::crop`], [`Crop::sample`]), and gives its points in that crop's units, 4 per crop
//! pixel ([`Crop::to_mesh`] maps them back to the 192-px crop). [`assemble`] makes the 478
//! points: the mesh with the heads' lips and eye points in place of its own, then the irises.
//!
//! `scripts/fetch-models.sh` writes the parts; `tools/attention/README.md` tells how the math
//! was checked against MediaPipe's kernels (478 points within 0.024 px of FaceMesh).

use super::image::Planes;
use super::landmarks::{INPUT_SIZE, NUM_LANDMARKS};

/// The trunk's file: the mesh, the presence logit and the feature map.
pub const TRUNK_FILE: &str = "face_landmark_with_attention.onnx";
/// The trunk's outputs' element counts: mesh, presence, feature map.
pub const TRUNK_OUTPUTS: [usize; 3] = [NUM_LANDMARKS * 3, 1, MAP_LEN];
/// Channels of the trunk's feature map (and of each head's input).
pub const MAP_CHANNELS: usize = 32;
/// Side of the trunk's feature map, in map pixels.
pub const MAP_SIDE: usize = 48;
/// Values in the feature map (NCHW).
pub const MAP_LEN: usize = MAP_CHANNELS * MAP_SIDE * MAP_SIDE;
/// Side of each head's input crop, in map pixels.
pub const CROP_SIDE: usize = 16;
/// Mesh crop pixels per feature-map pixel (192 / 48).
const MAP_STRIDE: f32 = (INPUT_SIZE / MAP_SIDE) as f32;
/// Head outputs are in units of a quarter crop pixel.
const HEAD_UNITS: f32 = 4.0;
/// Each crop is this much larger than its region's points' extent.
const CROP_SCALE: f32 = 1.5;
/// Points of the 478-point layout: the mesh, then 5 per iris.
pub const NUM_POINTS: usize = NUM_LANDMARKS + 2 * IRIS_POINTS;
/// Points per iris: its centre, then 4 on its edge.
pub const IRIS_POINTS: usize = 5;
/// Eye-contour points whose mean depth an iris takes.
const IRIS_DEPTH_POINTS: usize = 16;

/// A face region refined by a head: the mesh points it places, and the two that set its crop's
/// orientation.
#[derive(Debug)]
pub struct Region {
    /// The head's model file. MediaPipe names eyes by their side in the image: its "left eye"
    /// is the subject's right one.
    pub file: &'static str,
    /// The mesh points the head places, in the order of its output; also the points whose
    /// extent sets the crop.
    pub indices: &'static [u16],
    /// The crop's x axis runs from the first of these mesh points to the second.
    pub axis: (usize, usize),
    /// The first of its iris's points in the 478-point layout, for an eye.
    pub iris: Option<usize>,
}

impl Region {
    /// The head's output lengths: 2 values per point, then the iris's for an eye.
    pub fn outputs(&self) -> Vec<usize> {
        std::iter::once(2 * self.indices.len()).chain(self.iris.map(|_| 2 * IRIS_POINTS)).collect()
    }
}

/// The lips (80 points, turned along the mouth corners).
pub const LIPS: Region = Region {
    file: "face_landmark_with_attention_lips.onnx",
    indices: &[
        61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95, 88, 178, 87,
        14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415, 76, 77, 90, 180, 85, 16, 315, 404, 320,
        307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408, 62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42,
        41, 38, 12, 268, 271, 272, 407,
    ],
    axis: (61, 291),
    iris: None,
};

/// The subject's right eye and brow (71 points, turned along corners 33 -> 133) and its iris
/// (points 468..=472).
pub const RIGHT_EYE: Region = Region {
    file: "face_landmark_with_attention_left_eye.onnx",
    indices: &[
        33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 25, 110, 24, 23, 22, 26, 112,
        243, 247, 30, 29, 27, 28, 56, 190, 226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221,
        189, 35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193,
    ],
    axis: (33, 133),
    iris: Some(NUM_LANDMARKS),
};

/// The subject's left eye and brow (corners 362 -> 263) and its iris (points 473..=477).
pub const LEFT_EYE: Region = Region {
    file: "face_landmark_with_attention_right_eye.onnx",
    indices: &[
        263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 255, 339, 254, 253, 252,
        256, 341, 463, 467, 260, 259, 257, 258, 286, 414, 446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444,
        443, 442, 441, 413, 265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293,
        334, 296, 336, 285, 417,
    ],
    axis: (362, 263),
    iris: Some(NUM_LANDMARKS + IRIS_POINTS),
};

/// The eye regions in the order of [`crate::core::tracker::Face`]'s kept outputs: right, left.
pub const EYES: [&Region; 2] = [&RIGHT_EYE, &LEFT_EYE];

/// The most values an eye head outputs (contour, then iris).
pub const EYE_OUTPUT_LEN: usize = 2 * (71 + IRIS_POINTS);

/// Where a head's crop lies in the feature map: map coordinates of crop coordinates (u, v),
/// `x = m[0][0] u + m[0][1] v + m[0][2]`, `y = m[1][0] u + m[1][1] v + m[1][2]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    /// The affine map, row by row.
    pub m: [[f32; 3]; 2],
}

impl Region {
    /// The crop of this region in the feature map, from the trunk's `mesh` (x, y, z per point in
    /// 192-px crop pixels): turned so that its x axis runs along [`Region::axis`], centred on its
    /// points' extent measured in that orientation, [`CROP_SCALE`] x that extent on each axis.
    pub fn crop(&self, mesh: &[f32]) -> Crop {
        let at = |i: usize| (mesh[3 * i] / MAP_STRIDE, mesh[3 * i + 1] / MAP_STRIDE);
        let (a, b) = (at(self.axis.0), at(self.axis.1));
        // Turning by `turn` brings the axis onto x.
        let turn = -(b.1 - a.1).atan2(b.0 - a.0);
        let (s, c) = turn.sin_cos();
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for &i in self.indices {
            let (x, y) = at(i as usize);
            let p = [c * x - s * y, s * x + c * y];
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let per_pixel = CROP_SCALE / CROP_SIDE as f32;
        let (sx, sy) = (per_pixel * (hi[0] - lo[0]), per_pixel * (hi[1] - lo[1]));
        let (mu, mv) = (0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]));
        // The centre and the crop's axes turned back.
        let (cx, cy) = (c * mu + s * mv, -s * mu + c * mv);
        let (m00, m01, m10, m11) = (c * sx, s * sy, -s * sx, c * sy);
        let half = 0.5 * CROP_SIDE as f32;
        Crop { m: [[m00, m01, cx - half * (m00 + m01)], [m10, m11, cy - half * (m10 + m11)]] }
    }
}

impl Crop {
    /// Samples the crop out of `map` (the trunk's feature map, NCHW) into `out`
    /// ([`CROP_SIDE`] square planes, one per channel): bilinear at each crop pixel's centre; a
    /// pixel whose centre falls outside the map is zero in every channel.
    pub fn sample(&self, map: &[f32], out: Planes) {
        let [[m00, m01, m02], [m10, m11, m12]] = self.m;
        let side = MAP_SIDE;
        let last = (side - 1) as f32;
        let plane = side * side;
        for oy in 0..CROP_SIDE {
            for ox in 0..CROP_SIDE {
                let (u, v) = (ox as f32 + 0.5, oy as f32 + 0.5);
                let x = m00 * u + m01 * v + m02 - 0.5;
                let y = m10 * u + m11 * v + m12 - 0.5;
                let o = oy * out.row + ox;
                // (written so that NaN falls outside)
                if !((0.0..=last).contains(&x) && (0.0..=last).contains(&y)) {
                    for ch in 0..MAP_CHANNELS {
                        out.data[ch * out.plane + o] = 0.0;
                    }
                    continue;
                }
                let (x0, y0) = (x.floor(), y.floor());
                let (fx, fy) = (x - x0, y - y0);
                let (x0, y0) = (x0 as usize, y0 as usize);
                // At the last row or column the next one has weight 0.
                let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
                let (i00, i01, i10, i11) = (y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1);
                for ch in 0..MAP_CHANNELS {
                    let p = &map[ch * plane..][..plane];
                    let upper = (1.0 - fx) * p[i00] + fx * p[i01];
                    let lower = (1.0 - fx) * p[i10] + fx * p[i11];
                    out.data[ch * out.plane + o] = fy * lower + (1.0 - fy) * upper;
                }
            }
        }
    }

    /// A head's point (x, y in quarter crop pixels) in 192-px mesh crop pixels.
    pub fn to_mesh(&self, p: [f32; 2]) -> [f32; 2] {
        let [[m00, m01, m02], [m10, m11, m12]] = self.m;
        let (u, v) = (p[0] / HEAD_UNITS, p[1] / HEAD_UNITS);
        [MAP_STRIDE * (m00 * u + m01 * v + m02), MAP_STRIDE * (m10 * u + m11 * v + m12)]
    }
}

/// Writes `out` (x, y, z of [`NUM_POINTS`] points in 192-px crop pixels) from the trunk's `mesh`
/// and the heads: each head's points replace the x, y of the mesh points it places (the mesh's
/// z stays), and each iris takes the mean z of the first 16 points of its eye. A head given as
/// `None` leaves its points to the mesh; an eye without output leaves its iris at zero.
/// `heads` pairs each region with its raw output (its points in quarter crop pixels, then the
/// iris's for an eye) and its crop.
pub fn assemble(mesh: &[f32], heads: &[(&Region, Option<&[f32]>, Crop)], out: &mut [[f32; 3]]) {
    assert!(mesh.len() >= 3 * NUM_LANDMARKS && out.len() >= NUM_POINTS);
    for (o, m) in out.iter_mut().zip(mesh.chunks_exact(3)) {
        *o = [m[0], m[1], m[2]];
    }
    out[NUM_LANDMARKS..NUM_POINTS].fill([0.0; 3]);
    for (region, raw, crop) in heads {
        let Some(raw) = raw else { continue };
        let n = region.indices.len();
        for (&i, p) in region.indices.iter().zip(raw.chunks_exact(2)) {
            let [x, y] = crop.to_mesh([p[0], p[1]]);
            out[i as usize][0] = x;
            out[i as usize][1] = y;
        }
        if let Some(first) = region.iris {
            let depth = region.indices[..IRIS_DEPTH_POINTS].iter().map(|&i| mesh[3 * i as usize + 2]).sum::<f32>()
                / IRIS_DEPTH_POINTS as f32;
            for (o, p) in out[first..first + IRIS_POINTS].iter_mut().zip(raw[2 * n..].chunks_exact(2)) {
                let [x, y] = crop.to_mesh([p[0], p[1]]);
                *o = [x, y, depth];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up mesh (192-px crop pixels) and feature map (NCHW) whose expected crops were
    /// computed by tools/attention/ops.py (the custom ops in numpy, checked against MediaPipe).
    fn mesh() -> Vec<f32> {
        (0..NUM_LANDMARKS)
            .flat_map(|i| {
                let i = i as f32;
                [96.0 + 50.0 * (i * 0.7).cos() + 0.01 * i, 90.0 + 60.0 * (i * 1.3).sin(), 0.1 * i - 20.0]
            })
            .collect()
    }

    fn map() -> Vec<f32> {
        let mut m = vec![0.0; MAP_LEN];
        for c in 0..MAP_CHANNELS {
            for y in 0..MAP_SIDE {
                for x in 0..MAP_SIDE {
                    m[(c * MAP_SIDE + y) * MAP_SIDE + x] = (0.3 * x as f32 + 0.2 * y as f32 + c as f32).sin();
                }
            }
        }
        m
    }

    struct Expected {
        region: &'static Region,
        m: [[f32; 3]; 2],
        sum: f64,
        zeros: usize,
        /// (y, x, channel, value) of two samples.
        samples: [(usize, usize, usize, f32); 2],
        /// The head point (10, 20) in mesh crop pixels.
        point: [f32; 2],
    }

    const EXPECTED: [Expected; 3] = [
        Expected {
            region: &LIPS,
            m: [[-1.7411656, -2.9239314, 61.549366], [3.1028655, -1.6407572, 10.667203]],
            sum: 1.2583068944513798,
            zeros: 79,
            samples: [(3, 5, 7, -0.98119515), (10, 12, 31, 0.7839831)],
            point: [170.30719, 40.882324],
        },
        Expected {
            region: &RIGHT_EYE,
            m: [[2.449414, -2.5081935, 24.992086], [2.5859792, 2.375736, -17.387043]],
            sum: 0.3242602786049247,
            zeros: 85,
            samples: [(3, 5, 7, -0.8197236), (10, 12, 31, -0.37100953)],
            point: [74.298615, 3.8263397],
        },
        Expected {
            region: &LEFT_EYE,
            m: [[0.3400926, -2.5379887, 42.621647], [3.0134845, 0.2864296, -3.8289928]],
            sum: -0.9823849708773196,
            zeros: 10,
            samples: [(3, 5, 7, 0.96385646), (10, 12, 31, 0.20044866)],
            point: [123.12774, 20.547466],
        },
    ];

    #[test]
    fn crops_match_mediapipes_custom_ops() {
        let (mesh, map) = (mesh(), map());
        for e in &EXPECTED {
            let crop = e.region.crop(&mesh);
            for (got, want) in crop.m.iter().flatten().zip(e.m.iter().flatten()) {
                assert!((got - want).abs() < 1e-4, "{:?}: matrix {:?}, expected {:?}", e.region.axis, crop.m, e.m);
            }
            let mut out = vec![f32::NAN; MAP_CHANNELS * CROP_SIDE * CROP_SIDE];
            let side = CROP_SIDE;
            crop.sample(&map, Planes { data: &mut out, plane: side * side, row: side });
            let sum: f64 = out.iter().map(|&v| v as f64).sum();
            assert!((sum - e.sum).abs() < 1e-3, "{:?}: sum {sum}, expected {}", e.region.axis, e.sum);
            let zeros =
                (0..side * side).filter(|&p| (0..MAP_CHANNELS).all(|c| out[c * side * side + p] == 0.0)).count();
            assert_eq!(zeros, e.zeros, "{:?}: pixels outside the map", e.region.axis);
            for (y, x, c, want) in e.samples {
                let got = out[(c * side + y) * side + x];
                assert!((got - want).abs() < 1e-4, "{:?}: ({y}, {x}, {c}) = {got}, expected {want}", e.region.axis);
            }
            let p = crop.to_mesh([10.0, 20.0]);
            assert!((p[0] - e.point[0]).abs() < 1e-3 && (p[1] - e.point[1]).abs() < 1e-3, "{p:?} vs {:?}", e.point);
        }
    }

    /// A crop of points on a turned square: turned with them, centred, 1.5 x their extent.
    #[test]
    fn a_crop_follows_its_regions_turn_and_extent() {
        let angle = 0.5f32;
        let (s, c) = angle.sin_cos();
        let mut mesh = vec![0.0; 3 * NUM_LANDMARKS];
        // Lips points on a 40 x 20 px rectangle centred at (100, 80), turned by `angle`; the
        // mouth corners at the ends of its long axis.
        for (k, &i) in LIPS.indices.iter().enumerate() {
            let (u, v) = match i {
                61 => (-20.0, 0.0),
                291 => (20.0, 0.0),
                _ => ((k % 9) as f32 * 5.0 - 20.0, if k % 2 == 0 { -10.0 } else { 10.0 }),
            };
            mesh[3 * i as usize] = 100.0 + c * u - s * v;
            mesh[3 * i as usize + 1] = 80.0 + s * u + c * v;
        }
        let crop = LIPS.crop(&mesh);
        // The crop's centre is the rectangle's centre, in map pixels.
        let centre = crop.to_mesh([32.0, 32.0]);
        assert!((centre[0] - 100.0).abs() < 1e-3 && (centre[1] - 80.0).abs() < 1e-3, "{centre:?}");
        // Its x axis runs along the mouth, 1.5 x 40 px over the 64 head units.
        let right = crop.to_mesh([64.0, 32.0]);
        let (dx, dy) = (right[0] - centre[0], right[1] - centre[1]);
        assert!((dx - 30.0 * c).abs() < 1e-3 && (dy - 30.0 * s).abs() < 1e-3, "({dx}, {dy})");
        let below = crop.to_mesh([32.0, 64.0]);
        let (dx, dy) = (below[0] - centre[0], below[1] - centre[1]);
        assert!((dx + 15.0 * s).abs() < 1e-3 && (dy - 15.0 * c).abs() < 1e-3, "({dx}, {dy})");
    }

    /// Heads replace x, y of their points (z stays the mesh's); irises come after the mesh with
    /// the mean depth of their eye's first 16 points; a missing head leaves the mesh's points.
    #[test]
    fn assembly_puts_each_head_in_its_place() {
        let mesh = mesh();
        let identity = Crop { m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] };
        let eye: Vec<f32> = (0..EYE_OUTPUT_LEN).map(|k| 1000.0 + k as f32 * 4.0).collect();
        let mut out = vec![[f32::NAN; 3]; NUM_POINTS];
        assemble(&mesh, &[(&LIPS, None, identity), (&RIGHT_EYE, Some(&eye), identity)], &mut out);
        assert_eq!(out[61], [mesh[183], mesh[184], mesh[185]], "no lips head: the mesh's point");
        // Point k of the head (quarter pixels, identity crop: x4 to map pixels, /4 -> same).
        assert_eq!(out[33], [1000.0, 1004.0, mesh[3 * 33 + 2]]);
        assert_eq!(out[7], [1008.0, 1012.0, mesh[3 * 7 + 2]]);
        let depth = RIGHT_EYE.indices[..16].iter().map(|&i| mesh[3 * i as usize + 2]).sum::<f32>() / 16.0;
        assert_eq!(out[468], [1000.0 + 142.0 * 4.0, 1000.0 + 143.0 * 4.0, depth]);
        assert_eq!(out[472][0], 1000.0 + 150.0 * 4.0);
        assert_eq!(out[473], [0.0; 3], "no left eye head: no left iris");
        assert!(out.iter().all(|p| p.iter().all(|v| v.is_finite())));
    }

    /// A mesh of non-finite, huge or coincident points (what a model may output on garbage)
    /// never panics: a crop centred outside the map samples zeros, one of zero extent samples
    /// the one point it sits on.
    #[test]
    fn degenerate_meshes_give_zero_or_finite_crops() {
        let map = map();
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 96.0] {
            let mesh = vec![v; 3 * NUM_LANDMARKS];
            for region in [&LIPS, &RIGHT_EYE, &LEFT_EYE] {
                let crop = region.crop(&mesh);
                let side = CROP_SIDE;
                let mut out = vec![f32::NAN; MAP_CHANNELS * side * side];
                crop.sample(&map, Planes { data: &mut out, plane: side * side, row: side });
                if v == 96.0 {
                    assert!(out.iter().all(|x| x.is_finite()), "{v}: {:?}", &out[..4]);
                } else {
                    assert!(out.iter().all(|&x| x == 0.0), "{v}: {:?}", &out[..4]);
                }
                let head = vec![1.0; region.outputs().iter().sum()];
                let mut points = vec![[0.0; 3]; NUM_POINTS];
                assemble(&mesh, &[(region, Some(&head), crop)], &mut points);
            }
        }
    }

    #[test]
    fn region_lists_are_those_of_mediapipe() {
        assert_eq!((LIPS.indices.len(), RIGHT_EYE.indices.len(), LEFT_EYE.indices.len()), (80, 71, 71));
        assert_eq!(RIGHT_EYE.outputs(), [142, 10]);
        assert_eq!(LIPS.outputs(), [160]);
        for r in [&LIPS, &RIGHT_EYE, &LEFT_EYE] {
            assert!(r.indices.iter().all(|&i| (i as usize) < NUM_LANDMARKS));
            let mut seen = r.indices.to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), r.indices.len(), "{:?}: an index twice", r.axis);
        }
    }
}
