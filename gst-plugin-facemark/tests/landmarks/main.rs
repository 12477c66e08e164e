//! The face pipeline without GStreamer: landmarks against an independent reference, no false
//! faces, tracking across frames, drawing.
//!
//! One test binary, its tests by topic: `reference` (landmarks and runtimes against their
//! references), `tracking` (which faces are found, frame after frame), `irises`, `drawing`, and
//! `models` (missing, damaged and hostile model files, written by `onnx_bytes`).

#[path = "../common/mod.rs"]
mod common;

mod attention;
mod drawing;
mod irises;
mod models;
mod onnx_bytes;
mod reference;
mod tracking;

use common::{Rgb, model_dir};
use gstfacemark::core::image::{Frame, PixelLayout};
use gstfacemark::{Config, FaceMarker};

fn marker(config: Config) -> FaceMarker {
    FaceMarker::new(&model_dir(), config).expect("models load")
}

fn run(m: &mut FaceMarker, img: &Rgb) -> Vec<gstfacemark::Face> {
    let frame = Frame::new(&img.data, img.width, img.height, img.width * 3, PixelLayout::Rgb);
    m.process(&frame).unwrap().to_vec()
}
