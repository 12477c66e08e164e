//! The face pipeline without GStreamer: landmarks against an independent reference, no false
//! faces, tracking across frames, drawing.

mod common;

use common::{Rgb, model_dir, reference};
use gstfacemark::core::draw::{draw_face, flags};
use gstfacemark::core::image::{Frame, FrameMut, PixelLayout};
use gstfacemark::{Config, FaceMarker};

fn marker(config: Config) -> FaceMarker {
    FaceMarker::new(&model_dir(), config).expect("models load")
}

fn run(m: &mut FaceMarker, img: &Rgb) -> Vec<gstfacemark::Face> {
    let frame = Frame::new(
        &img.data,
        img.width,
        img.height,
        img.width * 3,
        PixelLayout::Rgb,
    );
    m.process(&frame).unwrap().to_vec()
}

/// Mesh indices 33, 133, 263, 362 (eye corners), 1 (nose tip), 61, 291 (mouth corners),
/// 152 (chin) and the iris centres 468, 473 within 3 px of the onnxruntime reference.
fn check_reference(image: &str) {
    let img = Rgb::load(image);
    let mut m = marker(Config {
        tracking: false,
        ..Config::default()
    });
    let faces = run(&mut m, &img);
    assert_eq!(faces.len(), 1, "{image}: exactly one face");
    let face = &faces[0];
    assert!(face.score > 0.9, "{image}: presence {}", face.score);
    let refs = reference(image);
    assert_eq!(refs.len(), 10);
    assert_eq!(face.points().count(), 478);
    for (i, x, y) in refs {
        let p = face.point(i).unwrap();
        let d = ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt();
        assert!(
            d <= 3.0,
            "{image}: landmark {i} at ({}, {}), reference ({x}, {y}), {d:.2} px off",
            p[0],
            p[1]
        );
    }
}

#[test]
fn astronaut_landmarks_match_reference() {
    check_reference("astronaut.png");
}

#[test]
fn grace_hopper_landmarks_match_reference() {
    check_reference("grace_hopper.png");
}

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
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
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
    for name in [
        "smpte",
        "ball",
        "snow",
        "checkers-8",
        "circular",
        "zone-plate",
    ] {
        for img in pattern(name, 3) {
            let faces = run(&mut m, &img);
            assert!(
                faces.is_empty(),
                "pattern {name}: {} face(s) found",
                faces.len()
            );
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
    let mut m = marker(Config {
        detect_interval: 0,
        ..Config::default()
    });
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
    assert_eq!(
        stats.detector_runs, 1,
        "tracking must not need the detector again"
    );
    assert_eq!(stats.landmark_runs, 25);
}

/// With tracking off the detector runs every frame; with an interval it runs every N frames.
#[test]
fn detector_schedule() {
    let img = Rgb::load("grace_hopper.png");
    let mut m = marker(Config {
        tracking: false,
        ..Config::default()
    });
    for _ in 0..3 {
        assert_eq!(run(&mut m, &img).len(), 1);
    }
    assert_eq!(m.stats().detector_runs, 3);
    let mut m = marker(Config {
        detect_interval: 2,
        ..Config::default()
    });
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

/// Drawing paints the eye corners in the eye-contour colours and leaves far pixels alone.
#[test]
fn drawing_marks_the_face_only() {
    let img = Rgb::load("astronaut.png");
    let mut m = marker(Config::default());
    let faces = run(&mut m, &img);
    assert_eq!(faces.len(), 1);
    for layout in [PixelLayout::Rgb, PixelLayout::Bgrx] {
        let stride = img.width * layout.bytes_per_pixel() + 12;
        let mut buf = img.to_layout(layout, stride);
        let before = buf.clone();
        let mut frame = FrameMut::new(&mut buf, img.width, img.height, stride, layout);
        draw_face(&mut frame, &faces[0], flags::DEFAULT);
        let bpp = layout.bytes_per_pixel();
        let [ro, go, bo] = layout.rgb_offsets();
        let at = |b: &[u8], x: usize, y: usize| {
            let p = y * stride + x * bpp;
            [b[p + ro], b[p + go], b[p + bo]]
        };
        let corner = |i: usize| {
            (
                faces[0].landmarks[i][0] as usize,
                faces[0].landmarks[i][1] as usize,
            )
        };
        let (x, y) = corner(33);
        assert_eq!(at(&buf, x, y), [255, 48, 48], "right eye corner red");
        assert_ne!(at(&before, x, y), [255, 48, 48]);
        let (x, y) = corner(263);
        assert_eq!(at(&buf, x, y), [48, 255, 48], "left eye corner green");
        // Far from the face (the box is around x 160..290, y 40..200): untouched, padding too.
        for (x, y) in [(5, 5), (500, 500), (20, 300), (450, 60), (256, 480)] {
            assert_eq!(at(&buf, x, y), at(&before, x, y), "({x}, {y})");
        }
        for y in 0..img.height {
            assert_eq!(
                &buf[y * stride + img.width * bpp..(y + 1) * stride],
                &before[y * stride + img.width * bpp..(y + 1) * stride]
            );
        }
        // The tesselation is drawn: many pixels inside the face turn light grey.
        let grey = (0..img.height)
            .flat_map(|y| (0..img.width).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                at(&buf, x, y) == [192, 192, 192] && at(&before, x, y) != [192, 192, 192]
            })
            .count();
        assert!(grey > 500, "{grey} tesselation pixels");
    }
}

#[test]
fn missing_and_corrupt_models_are_clear_errors() {
    let missing = std::path::Path::new("/nonexistent/facemark-models");
    let err = FaceMarker::new(missing, Config::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/facemark-models") && err.contains("scripts/fetch-models.sh"),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");

    let dir = std::env::temp_dir().join(format!("facemark-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("face_detection_short_range.onnx"),
        "this is a text file, not ONNX\n",
    )
    .unwrap();
    std::fs::copy(
        model_dir().join("face_landmark.onnx"),
        dir.join("face_landmark.onnx"),
    )
    .unwrap();
    let err = FaceMarker::new(&dir, Config::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("face_detection_short_range.onnx") && err.contains("scripts/fetch-models.sh"),
        "{err}"
    );
    assert!(err.contains("not a usable ONNX model"), "{err}");

    // The right file under the wrong name is caught by its outputs.
    std::fs::copy(
        model_dir().join("face_landmark.onnx"),
        dir.join("face_detection_short_range.onnx"),
    )
    .unwrap();
    let err = FaceMarker::new(&dir, Config::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("face_detection_short_range.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The iris model adds 10 points (478 in all) unless switched off; the iris centres lie
/// between their eye corners.
#[test]
fn irises_on_and_off() {
    let img = Rgb::load("grace_hopper.png");
    let mut m = marker(Config::default());
    let face = run(&mut m, &img).remove(0);
    assert_eq!(face.points().count(), 478);
    for (centre, a, b) in [(468, 33, 133), (473, 362, 263)] {
        let c = face.point(centre).unwrap();
        let (pa, pb) = (face.landmarks[a], face.landmarks[b]);
        assert!(
            c[0] > pa[0].min(pb[0]) && c[0] < pa[0].max(pb[0]),
            "iris {centre} x between corners"
        );
        assert!(
            (c[1] - 0.5 * (pa[1] + pb[1])).abs() < 10.0,
            "iris {centre} y near the corners"
        );
    }
    let mut m = marker(Config {
        irises: false,
        ..Config::default()
    });
    let face = run(&mut m, &img).remove(0);
    assert_eq!(face.points().count(), 468);
    assert_eq!(m.stats().iris_runs, 0);
}

/// Every runtime gives the same outputs as tract on the model as it is: the fused engine
/// (which must be the one `auto` picks for these models) and tract with PRelu rewritten, on a
/// pseudo-random input and on the astronaut's face crop, for all three models.
#[test]
fn runtimes_agree_with_tract_on_the_model_as_it_is() {
    use gstfacemark::core::model::{DETECTOR_FILE, IRIS_FILE, LANDMARK_FILE, Net, Runtime};
    let dir = model_dir();
    let img = Rgb::load("astronaut.png");
    for (file, size, outs) in [
        (DETECTOR_FILE, 128, &[896 * 16, 896][..]),
        (LANDMARK_FILE, 192, &[1404, 1][..]),
        (IRIS_FILE, 64, &[213, 15][..]),
    ] {
        let mut nets: Vec<Net> = [Runtime::TractAsIs, Runtime::Tract, Runtime::Auto]
            .iter()
            .map(|&r| Net::load_with(&dir.join(file), size, outs, r).unwrap())
            .collect();
        assert!(
            nets[2].runtime().starts_with("fused"),
            "{file}: {}",
            nets[2].runtime()
        );
        for input in 0..2 {
            for net in nets.iter_mut() {
                let x = net.input();
                // a deterministic pseudo-random input in [0, 1], or the image scaled to the
                // input, in [0, 1]
                let mut s = 12345u32;
                for c in 0..3 {
                    for y in 0..size {
                        for xx in 0..size {
                            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                            x.data[c * x.plane + y * x.row + xx] = if input == 0 {
                                (s >> 8) as f32 / (1u32 << 24) as f32
                            } else {
                                let p = img.pixel(xx * img.width / size, y * img.height / size);
                                p[c] as f32 / 255.0
                            };
                        }
                    }
                }
                net.run().unwrap();
            }
            for &len in outs {
                let reference = nets[0].output(len);
                assert_eq!(reference.len(), len);
                for net in &nets[1..] {
                    let worst = reference
                        .iter()
                        .zip(net.output(len))
                        .map(|(p, q)| (p - q).abs() / (1.0 + p.abs()))
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst < 1e-4,
                        "{file} ({}), input {input}: output {len} differs by {worst}",
                        net.runtime()
                    );
                }
            }
        }
    }
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
    let mut m = marker(Config {
        max_faces: 2,
        ..Config::default()
    });
    for _ in 0..5 {
        let faces = run(&mut m, &canvas);
        assert_eq!(faces.len(), 2);
        let mut xs: Vec<f32> = faces.iter().map(|f| f.landmarks[1][0]).collect();
        xs.sort_by(f32::total_cmp);
        assert!(xs[0] < 280.0 && xs[1] > 290.0, "{xs:?}");
    }
    assert_eq!(m.stats().detector_runs, 1);
}

/// Damaged copies of a real model (cut short, bytes overwritten) give errors that name the file
/// and the fix, never a panic; the undamaged bytes load.
#[test]
fn damaged_model_bytes_are_errors() {
    use gstfacemark::core::model::{DETECTOR_FILE, Net};
    let bytes = std::fs::read(model_dir().join(DETECTOR_FILE)).unwrap();
    let name = std::path::Path::new("damaged.onnx");
    let outputs = [896 * 16, 896];
    let check = |data: &[u8], what: &str| {
        if let Err(e) = Net::from_bytes(name, data, 128, &outputs) {
            let text = e.to_string();
            assert!(
                text.contains("damaged.onnx") && text.contains("fetch-models.sh"),
                "{what}: {text}"
            );
            false
        } else {
            true
        }
    };
    for cut in [0, 1, 7, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            !check(&bytes[..cut], &format!("cut at {cut}")),
            "cut at {cut} loads"
        );
    }
    // Overwritten bytes may still make a loadable model (weights are bytes too); what matters
    // is that loading returns.
    for (at, value) in [(10, 0xff), (50, 0x00), (200, 0x7f), (4000, 0x12)] {
        let mut damaged = bytes.clone();
        damaged[at] = value;
        check(&damaged, &format!("byte {at} = {value:#x}"));
    }
    assert!(check(&bytes, "undamaged"));
}
