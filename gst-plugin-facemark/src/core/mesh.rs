//! Face mesh topology as data: contour polylines, and a triangulated tesselation.
//!
//! Indices follow the 468-point face mesh. "Left"/"right" are the subject's: the right eye
//! (indices around 33..133) appears on the left of an unmirrored image.
//!
//! The contour polylines below are written down from the mesh's known vertex numbering. The
//! tesselation is *derived* here rather than copied: a Delaunay triangulation of one frontal
//! face's landmarks (`mesh_layout.txt`, produced by tests/reference/reference_landmarks.py with
//! --layout), keeping only triangles inside the face oval and outside the eye openings and the
//! mouth opening. It has the same vertices as MediaPipe's tesselation but is not identical
//! edge for edge.

use std::sync::OnceLock;

/// Closed loop around the face.
pub const FACE_OVAL: &[u16] = &[
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150,
    136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109, 10,
];
/// Outer edge of the upper lip, mouth corner 61 to mouth corner 291.
pub const LIPS_OUTER_UPPER: &[u16] = &[61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291];
/// Outer edge of the lower lip, mouth corner 61 to mouth corner 291.
pub const LIPS_OUTER_LOWER: &[u16] = &[61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291];
/// Inner edge of the upper lip, inner corner 78 to inner corner 308.
pub const LIPS_INNER_UPPER: &[u16] = &[78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308];
/// Inner edge of the lower lip, inner corner 78 to inner corner 308.
pub const LIPS_INNER_LOWER: &[u16] = &[78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308];
/// Upper lid of the subject's right eye, corner 33 to corner 133.
pub const RIGHT_EYE_UPPER: &[u16] = &[33, 246, 161, 160, 159, 158, 157, 173, 133];
/// Lower lid of the subject's right eye, corner 33 to corner 133.
pub const RIGHT_EYE_LOWER: &[u16] = &[33, 7, 163, 144, 145, 153, 154, 155, 133];
/// Upper lid of the subject's left eye, corner 263 to corner 362.
pub const LEFT_EYE_UPPER: &[u16] = &[263, 466, 388, 387, 386, 385, 384, 398, 362];
/// Lower lid of the subject's left eye, corner 263 to corner 362.
pub const LEFT_EYE_LOWER: &[u16] = &[263, 249, 390, 373, 374, 380, 381, 382, 362];
/// Upper edge of the subject's right eyebrow.
pub const RIGHT_EYEBROW_UPPER: &[u16] = &[70, 63, 105, 66, 107];
/// Lower edge of the subject's right eyebrow.
pub const RIGHT_EYEBROW_LOWER: &[u16] = &[46, 53, 52, 65, 55];
/// Upper edge of the subject's left eyebrow.
pub const LEFT_EYEBROW_UPPER: &[u16] = &[300, 293, 334, 296, 336];
/// Lower edge of the subject's left eyebrow.
pub const LEFT_EYEBROW_LOWER: &[u16] = &[276, 283, 282, 295, 285];

/// A group of polylines drawn in one colour.
#[derive(Clone, Copy, Debug)]
pub struct ContourGroup {
    /// What the group outlines, e.g. `lips` (for tests and debugging).
    pub name: &'static str,
    /// Open polylines of mesh indices, each drawn point to point.
    pub polylines: &'static [&'static [u16]],
    /// RGB
    pub color: [u8; 3],
}

/// MediaPipe's default face-mesh contour style (its drawing_styles colours, given there as BGR):
/// face oval and lips (224, 224, 224), the subject's right eye and eyebrow red (255, 48, 48),
/// left eye and eyebrow green (48, 255, 48); all 2 px thick.
pub const CONTOURS: &[ContourGroup] = &[
    ContourGroup { name: "face-oval", polylines: &[FACE_OVAL], color: [224, 224, 224] },
    ContourGroup {
        name: "lips",
        polylines: &[LIPS_OUTER_UPPER, LIPS_OUTER_LOWER, LIPS_INNER_UPPER, LIPS_INNER_LOWER],
        color: [224, 224, 224],
    },
    ContourGroup { name: "right-eye", polylines: &[RIGHT_EYE_UPPER, RIGHT_EYE_LOWER], color: [255, 48, 48] },
    ContourGroup {
        name: "right-eyebrow",
        polylines: &[RIGHT_EYEBROW_UPPER, RIGHT_EYEBROW_LOWER],
        color: [255, 48, 48],
    },
    ContourGroup { name: "left-eye", polylines: &[LEFT_EYE_UPPER, LEFT_EYE_LOWER], color: [48, 255, 48] },
    ContourGroup { name: "left-eyebrow", polylines: &[LEFT_EYEBROW_UPPER, LEFT_EYEBROW_LOWER], color: [48, 255, 48] },
];

/// Line width of the contours, in pixels.
pub const CONTOUR_THICKNESS: u32 = 2;
/// RGB colour of the tesselation edges (light grey).
pub const TESSELATION_COLOR: [u8; 3] = [192, 192, 192];
/// Line width of the tesselation edges, in pixels.
pub const TESSELATION_THICKNESS: u32 = 1;

/// Reference layout of the 468 points (normalised, frontal), see the module docs.
const LAYOUT: &str = include_str!("../mesh_layout.txt");

fn layout() -> Vec<[f64; 2]> {
    LAYOUT
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace().map(|v| v.parse::<f64>().expect("mesh layout"));
            [it.next().unwrap(), it.next().unwrap()]
        })
        .collect()
}

/// The tesselation's edges (each once, lower index first), computed on first use.
pub fn tesselation() -> &'static [(u16, u16)] {
    static EDGES: OnceLock<Vec<(u16, u16)>> = OnceLock::new();
    EDGES.get_or_init(|| {
        let pts = layout();
        assert_eq!(pts.len(), super::landmarks::NUM_LANDMARKS);
        let loop_of = |a: &[u16], b: &[u16]| -> Vec<[f64; 2]> {
            a.iter().chain(b.iter().rev()).map(|&i| pts[i as usize]).collect()
        };
        let oval: Vec<[f64; 2]> = FACE_OVAL.iter().map(|&i| pts[i as usize]).collect();
        let holes = [
            loop_of(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER),
            loop_of(LEFT_EYE_UPPER, LEFT_EYE_LOWER),
            loop_of(LIPS_INNER_UPPER, LIPS_INNER_LOWER),
        ];
        let mut edges = Vec::new();
        for t in delaunay(&pts) {
            let c = [
                (pts[t[0]][0] + pts[t[1]][0] + pts[t[2]][0]) / 3.0,
                (pts[t[0]][1] + pts[t[1]][1] + pts[t[2]][1]) / 3.0,
            ];
            if !inside(&oval, c) || holes.iter().any(|h| inside(h, c)) {
                continue;
            }
            for (a, b) in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])] {
                edges.push((a.min(b) as u16, a.max(b) as u16));
            }
        }
        edges.sort_unstable();
        edges.dedup();
        edges
    })
}

/// Even-odd point-in-polygon test.
fn inside(poly: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut r = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            r = !r;
        }
        j = i;
    }
    r
}

/// Bowyer-Watson Delaunay triangulation (O(n^2), fine for a few hundred points, run once).
fn delaunay(pts: &[[f64; 2]]) -> Vec<[usize; 3]> {
    let n = pts.len();
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in pts {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    let d = (x1 - x0).max(y1 - y0) * 20.0;
    let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let mut all: Vec<[f64; 2]> = pts.to_vec();
    all.push([mx - d, my - d]);
    all.push([mx + d, my - d]);
    all.push([mx, my + d]);
    let circum = |t: &[usize; 3]| -> ([f64; 2], f64) {
        let (a, b, c) = (all[t[0]], all[t[1]], all[t[2]]);
        let dd = 2.0 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]));
        let sq = |p: [f64; 2]| p[0] * p[0] + p[1] * p[1];
        let ux = (sq(a) * (b[1] - c[1]) + sq(b) * (c[1] - a[1]) + sq(c) * (a[1] - b[1])) / dd;
        let uy = (sq(a) * (c[0] - b[0]) + sq(b) * (a[0] - c[0]) + sq(c) * (b[0] - a[0])) / dd;
        ([ux, uy], (a[0] - ux).powi(2) + (a[1] - uy).powi(2))
    };
    let mut tris: Vec<([usize; 3], [f64; 2], f64)> = Vec::new();
    let sup = [n, n + 1, n + 2];
    let (c, r) = circum(&sup);
    tris.push((sup, c, r));
    for (i, p) in pts.iter().enumerate() {
        let mut boundary: Vec<(usize, usize)> = Vec::new();
        tris.retain(|(t, c, r2)| {
            if (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2) < *r2 {
                for e in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])] {
                    if let Some(k) = boundary.iter().position(|&(a, b)| (a, b) == (e.1, e.0) || (a, b) == e) {
                        boundary.swap_remove(k);
                    } else {
                        boundary.push(e);
                    }
                }
                false
            } else {
                true
            }
        });
        for (a, b) in boundary {
            let t = [a, b, i];
            let (c, r) = circum(&t);
            tris.push((t, c, r));
        }
    }
    tris.into_iter().map(|(t, _, _)| t).filter(|t| t.iter().all(|&v| v < n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contour_indices_are_in_range_and_distinct_groups() {
        for g in CONTOURS {
            for line in g.polylines {
                assert!(line.len() >= 2, "{}", g.name);
                assert!(line.iter().all(|&i| (i as usize) < 468), "{}", g.name);
            }
        }
        assert_eq!(FACE_OVAL.first(), FACE_OVAL.last());
        assert_eq!(FACE_OVAL.len(), 37);
    }

    #[test]
    fn tesselation_covers_the_mesh() {
        let edges = tesselation();
        // A triangulated disc of 468 vertices has about 3n edges; MediaPipe's has ~1300 triangles.
        assert!(edges.len() > 1200 && edges.len() < 1500, "{}", edges.len());
        let mut used = [false; 468];
        for &(a, b) in edges {
            assert!(a < b && (b as usize) < 468);
            used[a as usize] = true;
            used[b as usize] = true;
        }
        let unused = used.iter().filter(|u| !**u).count();
        assert!(unused < 10, "{unused} vertices without an edge");
        // No edge crosses the mouth opening: upper and lower inner lip midpoints stay unlinked.
        assert!(!edges.contains(&(13, 14)));
    }

    #[test]
    fn delaunay_of_a_square() {
        let t = delaunay(&[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.1]]);
        assert_eq!(t.len(), 2);
    }
}
