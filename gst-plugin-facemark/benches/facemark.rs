//! `cargo bench -p gst-plugin-facemark`: per-frame time of detection + landmarks + drawing on one
//! core (tract runs single-threaded), with tracking on and off, on the astronaut (512x512) and on
//! a 1280x720 frame with the astronaut's head pasted in.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::{Rgb, model_dir};
use gstfacemark::core::draw::{draw_face, flags};
use gstfacemark::core::image::{Frame, FrameMut, PixelLayout};
use gstfacemark::{Config, FaceMarker};

const FRAMES: usize = 200;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(name: &str, img: &Rgb, tracking: bool) {
    let layout = PixelLayout::Rgbx;
    let stride = img.width * 4;
    let src = img.to_layout(layout, stride);
    let mut buf = src.clone();
    let mut m = FaceMarker::new(&model_dir(), Config { tracking, ..Config::default() }).unwrap();
    let (mut total, mut infer) = (Vec::with_capacity(FRAMES), Vec::with_capacity(FRAMES));
    for k in 0..FRAMES + 10 {
        buf.copy_from_slice(&src);
        let t0 = Instant::now();
        let n = {
            let faces = m.process(&Frame::new(&buf, img.width, img.height, stride, layout)).unwrap();
            faces.len()
        };
        let t1 = Instant::now();
        let mut canvas = FrameMut::new(&mut buf, img.width, img.height, stride, layout);
        for f in m.faces() {
            draw_face(&mut canvas, f, flags::DEFAULT);
        }
        let t2 = Instant::now();
        assert_eq!(n, 1, "{name}: one face");
        if k >= 10 {
            infer.push((t1 - t0).as_secs_f64() * 1e3);
            total.push((t2 - t0).as_secs_f64() * 1e3);
        }
    }
    let s = m.stats();
    println!(
        "{name:<28} tracking={:<5} median {:6.2} ms/frame (models {:6.2} ms, drawing {:5.2} ms); detector ran {}x in {} frames",
        tracking,
        median(total.clone()),
        median(infer.clone()),
        median(total) - median(infer),
        s.detector_runs,
        s.frames
    );
}

fn main() {
    // `cargo test --benches` passes --bench-less flags; run quickly there.
    let astronaut = Rgb::load("astronaut.png");
    let mut hd = Rgb::filled(1280, 720, [100, 110, 120]);
    let mut head = Rgb::filled(300, 300, [0; 3]);
    head.paste(&astronaut, -70, -10);
    hd.paste(&head, 700, 200);
    for tracking in [false, true] {
        bench("astronaut 512x512", &astronaut, tracking);
        bench("1280x720, head pasted", &hd, tracking);
    }
}
