//! Which faces are found, frame after frame: none in test patterns, tracking that holds a
//! moving face without the detector, tiles for small faces, the detector's schedule, two faces.

use crate::common::{Rgb, reference};
use crate::{marker, run};
use gstfacemark::Config;

/// Frames from videotestsrc patterns, through GStreamer (RGB, 320x240).
fn pattern(name: &str, frames: usize) -> Vec<Rgb> {
    use gst::prelude::*;
    use gst_video::prelude::*;
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc pattern={name} num-buffers={frames} ! video/x-raw,format=RGB,width=320,height=240 \
         ! appsink name=sink sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let buffer = sample.buffer().unwrap();
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).unwrap();
        let mut img = Rgb::filled(320, 240, [0; 3]);
        for y in 0..240 {
            img.data[y * 960..(y + 1) * 960].copy_from_slice(&data[y * stride..y * stride + 960]);
        }
        out.push(img);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(out.len(), frames);
    out
}

#[test]
fn no_faces_in_test_patterns() {
    let mut m = marker(Config::default());
    for name in ["smpte", "ball", "snow", "checkers-8", "circular", "zone-plate"] {
        for img in pattern(name, 3) {
            let faces = run(&mut m, &img);
            assert!(faces.is_empty(), "pattern {name}: {} face(s) found", faces.len());
        }
    }
}

/// The astronaut's head moving 4 px right and 2 px down per frame on a grey 640x480 canvas stays
/// tracked: one face every frame, the nose follows, and the detector runs only once.
#[test]
fn moving_face_stays_tracked() {
    let astronaut = Rgb::load("astronaut.png");
    let mut head = Rgb::filled(240, 240, [0; 3]);
    head.paste(&astronaut, -100, -10);
    let mut m = marker(Config { detect_interval: 0, ..Config::default() });
    let mut first_nose = None;
    for k in 0..25isize {
        let mut canvas = Rgb::filled(640, 480, [128, 128, 128]);
        canvas.paste(&head, 60 + 4 * k, 80 + 2 * k);
        let faces = run(&mut m, &canvas);
        assert_eq!(faces.len(), 1, "frame {k}");
        let nose = faces[0].landmarks[1];
        let (x0, y0) = *first_nose.get_or_insert((nose[0], nose[1]));
        let (ex, ey) = (x0 + 4.0 * k as f32, y0 + 2.0 * k as f32);
        assert!(
            (nose[0] - ex).abs() < 3.0 && (nose[1] - ey).abs() < 3.0,
            "frame {k}: nose {nose:?}, expected ({ex}, {ey})"
        );
    }
    let stats = m.stats();
    assert_eq!(stats.frames, 25);
    assert_eq!(stats.detector_runs, 1, "tracking must not need the detector again");
    assert_eq!(stats.landmark_runs, 25);
}

/// The astronaut photo on a grey 1280x720 canvas at `x`, 104: its face (~92 px wide, 1/14 of the
/// width) is too small for the detector's view of the whole frame, not for a 720x720 tile's.
fn small_face_at(x: isize) -> Rgb {
    let mut canvas = Rgb::filled(1280, 720, [128, 128, 128]);
    canvas.paste(&Rgb::load("astronaut.png"), x, 104);
    canvas
}

/// Each reference landmark of the astronaut, moved by `(dx, dy)`, within 3 px in `face`.
fn check_moved_reference(face: &gstfacemark::Face, (dx, dy): (f32, f32)) {
    for (i, x, y) in reference("astronaut.png") {
        let p = face.point(i).unwrap();
        let d = ((p[0] - x - dx).powi(2) + (p[1] - y - dy).powi(2)).sqrt();
        assert!(d <= 3.0, "landmark {i} {d:.2} px off");
    }
}

#[test]
fn small_faces_are_found_in_tiles_of_a_wide_frame() {
    // Without tiles the detector never sees it.
    let mut m = marker(Config { search_tiles: false, ..Config::default() });
    for _ in 0..3 {
        assert!(run(&mut m, &small_face_at(384)).is_empty());
    }
    assert_eq!(m.stats().detector_runs, 3);

    // In the first tile (x 0..720): found on the first frame, at the reference landmarks.
    let mut m = marker(Config::default());
    let faces = run(&mut m, &small_face_at(384));
    assert_eq!(faces.len(), 1);
    check_moved_reference(&faces[0], (384.0, 104.0));
    assert_eq!(m.stats().detector_runs, 2, "the whole frame, then tile 0");

    // Only in the second tile (x 560..1280): the first frame looks in tile 0 and finds nothing,
    // the second finds it in tile 1, and tracking holds it without the detector.
    let mut m = marker(Config::default());
    let frame = small_face_at(700);
    assert!(run(&mut m, &frame).is_empty());
    for k in 0..4 {
        let faces = run(&mut m, &frame);
        assert_eq!(faces.len(), 1, "frame {k}");
        check_moved_reference(&faces[0], (700.0, 104.0));
    }
    assert_eq!(m.stats().detector_runs, 4);
}

/// With tracking off the detector runs every frame; with an interval it runs every N frames.
#[test]
fn detector_schedule() {
    let img = Rgb::load("grace_hopper.png");
    let mut m = marker(Config { tracking: false, ..Config::default() });
    for _ in 0..3 {
        assert_eq!(run(&mut m, &img).len(), 1);
    }
    assert_eq!(m.stats().detector_runs, 3);
    let mut m = marker(Config { detect_interval: 2, ..Config::default() });
    for _ in 0..5 {
        assert_eq!(run(&mut m, &img).len(), 1);
    }
    // frames 1, 3, 5
    assert_eq!(m.stats().detector_runs, 3);
}

#[test]
fn losing_the_face_restarts_detection() {
    let img = Rgb::load("astronaut.png");
    let blank = Rgb::filled(512, 512, [30, 30, 30]);
    let mut m = marker(Config::default());
    assert_eq!(run(&mut m, &img).len(), 1);
    assert_eq!(run(&mut m, &blank).len(), 0);
    assert_eq!(run(&mut m, &img).len(), 1);
    assert_eq!(m.stats().detector_runs, 3);
}

/// Two faces side by side: max-faces 1 finds one, max-faces 2 finds both and keeps tracking
/// both without running the detector again.
#[test]
fn two_faces() {
    let mut a = Rgb::filled(256, 256, [0; 3]);
    a.paste(&Rgb::load("astronaut.png"), -94, -2);
    let mut b = Rgb::filled(256, 256, [0; 3]);
    b.paste(&Rgb::load("grace_hopper.png"), -140, -132);
    let mut canvas = Rgb::filled(560, 300, [128, 128, 128]);
    canvas.paste(&a, 10, 20);
    canvas.paste(&b, 290, 30);
    let mut m = marker(Config::default());
    assert_eq!(run(&mut m, &canvas).len(), 1);
    let mut m = marker(Config { max_faces: 2, ..Config::default() });
    for _ in 0..5 {
        let faces = run(&mut m, &canvas);
        assert_eq!(faces.len(), 2);
        let mut xs: Vec<f32> = faces.iter().map(|f| f.landmarks[1][0]).collect();
        xs.sort_by(f32::total_cmp);
        assert!(xs[0] < 280.0 && xs[1] > 290.0, "{xs:?}");
    }
    assert_eq!(m.stats().detector_runs, 1);
}
