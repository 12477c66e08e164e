//! Faces as GStreamer values: the landmark array and face structure carried by the
//! region-of-interest metadata and the `facemark` messages.

use gst::prelude::*;

use crate::core::tracker::Face;

/// x0, y0, z0, x1, ... in frame pixels (z in x's scale).
pub(super) fn landmark_array(face: &Face) -> gst::Array {
    let mut values = Vec::with_capacity(face.landmarks.len() * 3 + 30);
    for p in face.points() {
        values.extend(p.iter().map(|v| (*v as f64).to_send_value()));
    }
    gst::Array::from_values(values)
}

pub(super) fn face_structure(face: &Face) -> gst::Structure {
    let [x0, y0, x1, y1] = face.bbox;
    gst::Structure::builder("face")
        .field("score", face.score as f64)
        .field("x", x0 as f64)
        .field("y", y0 as f64)
        .field("width", (x1 - x0) as f64)
        .field("height", (y1 - y0) as f64)
        .field("landmarks", landmark_array(face))
        .build()
}
