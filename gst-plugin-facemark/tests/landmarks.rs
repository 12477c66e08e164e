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
    let frame = Frame::new(&img.data, img.width, img.height, img.width * 3, PixelLayout::Rgb);
    m.process(&frame).unwrap().to_vec()
}

/// Mesh indices 33, 133, 263, 362 (eye corners), 1 (nose tip), 61, 291 (mouth corners),
/// 152 (chin) and the iris centres 468, 473 within 3 px of the onnxruntime reference.
fn check_reference(image: &str) {
    let img = Rgb::load(image);
    let mut m = marker(Config { tracking: false, ..Config::default() });
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
        assert!(d <= 3.0, "{image}: landmark {i} at ({}, {}), reference ({x}, {y}), {d:.2} px off", p[0], p[1]);
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
        let corner = |i: usize| (faces[0].landmarks[i][0] as usize, faces[0].landmarks[i][1] as usize);
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
            .filter(|&(x, y)| at(&buf, x, y) == [192, 192, 192] && at(&before, x, y) != [192, 192, 192])
            .count();
        assert!(grey > 500, "{grey} tesselation pixels");
    }
}

#[test]
fn missing_and_corrupt_models_are_clear_errors() {
    let missing = std::path::Path::new("/nonexistent/facemark-models");
    let err = FaceMarker::new(missing, Config::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/facemark-models") && err.contains("scripts/fetch-models.sh"), "{err}");
    assert!(err.contains("does not exist"), "{err}");

    let dir = std::env::temp_dir().join(format!("facemark-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("face_detection_short_range.onnx"), "this is a text file, not ONNX\n").unwrap();
    std::fs::copy(model_dir().join("face_landmark.onnx"), dir.join("face_landmark.onnx")).unwrap();
    let err = FaceMarker::new(&dir, Config::default()).unwrap_err().to_string();
    assert!(err.contains("face_detection_short_range.onnx") && err.contains("scripts/fetch-models.sh"), "{err}");
    assert!(err.contains("not a usable ONNX model"), "{err}");

    // The right file under the wrong name is caught by its outputs.
    std::fs::copy(model_dir().join("face_landmark.onnx"), dir.join("face_detection_short_range.onnx")).unwrap();
    let err = FaceMarker::new(&dir, Config::default()).unwrap_err().to_string();
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
        assert!(c[0] > pa[0].min(pb[0]) && c[0] < pa[0].max(pb[0]), "iris {centre} x between corners");
        assert!((c[1] - 0.5 * (pa[1] + pb[1])).abs() < 10.0, "iris {centre} y near the corners");
    }
    let mut m = marker(Config { irises: false, ..Config::default() });
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
        assert!(nets[2].runtime().starts_with("fused"), "{file}: {}", nets[2].runtime());
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
                    assert!(worst < 1e-4, "{file} ({}), input {input}: output {len} differs by {worst}", net.runtime());
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
            assert!(text.contains("damaged.onnx") && text.contains("fetch-models.sh"), "{what}: {text}");
            false
        } else {
            true
        }
    };
    for cut in [0, 1, 7, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        assert!(!check(&bytes[..cut], &format!("cut at {cut}")), "cut at {cut} loads");
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

/// Just enough protobuf encoding to write small ONNX models by hand, hostile ones included (no
/// dependency of the crate encodes protobuf). Field numbers are those of onnx.proto.
mod onnx_bytes {
    pub const FLOAT: i64 = 1;
    pub const INT64: i64 = 7;
    /// AttributeProto.AttributeType INT and TENSOR.
    const ATTRIBUTE_INT: i64 = 2;
    const ATTRIBUTE_TENSOR: i64 = 4;

    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A varint field (wire type 0).
    fn int(out: &mut Vec<u8>, field: u64, v: i64) {
        varint(out, field << 3);
        varint(out, v as u64);
    }

    /// A length-delimited field (wire type 2): bytes, a string or a message.
    fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
        varint(out, (field << 3) | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }

    /// A TensorProto: dims (1), data_type (2), name (8), raw_data (9).
    pub fn tensor(name: &str, data_type: i64, dims: &[i64], raw: &[u8]) -> Vec<u8> {
        let mut t = vec![];
        for &d in dims {
            int(&mut t, 1, d);
        }
        int(&mut t, 2, data_type);
        bytes(&mut t, 8, name.as_bytes());
        if !raw.is_empty() {
            bytes(&mut t, 9, raw);
        }
        t
    }

    /// An INT64 tensor holding `values`.
    pub fn int64s(name: &str, values: &[i64]) -> Vec<u8> {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensor(name, INT64, &[values.len() as i64], &raw)
    }

    /// A NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
    pub fn node(op: &str, inputs: &[&str], output: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
        let mut n = vec![];
        for i in inputs {
            bytes(&mut n, 1, i.as_bytes());
        }
        bytes(&mut n, 2, output.as_bytes());
        bytes(&mut n, 3, output.as_bytes());
        bytes(&mut n, 4, op.as_bytes());
        for a in attributes {
            bytes(&mut n, 5, a);
        }
        n
    }

    /// An AttributeProto (name 1, i 3, type 20) holding an integer.
    pub fn int_attribute(name: &str, value: i64) -> Vec<u8> {
        let mut a = vec![];
        bytes(&mut a, 1, name.as_bytes());
        int(&mut a, 3, value);
        int(&mut a, 20, ATTRIBUTE_INT);
        a
    }

    /// An AttributeProto (name 1, t 5, type 20) holding a tensor.
    pub fn tensor_attribute(name: &str, tensor: Vec<u8>) -> Vec<u8> {
        let mut a = vec![];
        bytes(&mut a, 1, name.as_bytes());
        bytes(&mut a, 5, &tensor);
        int(&mut a, 20, ATTRIBUTE_TENSOR);
        a
    }

    /// A ValueInfoProto (name 1, type 2) of a float tensor: TypeProto.tensor_type (1) with
    /// elem_type (1) and, when given, shape (2), whose dims (1) hold dim_value (1).
    fn float_value(name: &str, dims: Option<&[i64]>) -> Vec<u8> {
        let mut tensor_type = vec![];
        int(&mut tensor_type, 1, FLOAT);
        if let Some(dims) = dims {
            let mut shape = vec![];
            for &d in dims {
                let mut dim = vec![];
                int(&mut dim, 1, d);
                bytes(&mut shape, 1, &dim);
            }
            bytes(&mut tensor_type, 2, &shape);
        }
        let mut ty = vec![];
        bytes(&mut ty, 1, &tensor_type);
        let mut v = vec![];
        bytes(&mut v, 1, name.as_bytes());
        bytes(&mut v, 2, &ty);
        v
    }

    /// A ModelProto (ir_version 1, graph 7, opset_import 8 at opset 13) whose graph (node 1,
    /// name 2, initializer 5, input 11, output 12) reads the float input `x` [1, 3, 128, 128]
    /// and has the output `y`.
    pub fn model(nodes: &[Vec<u8>], initializers: &[Vec<u8>]) -> Vec<u8> {
        let mut g = vec![];
        for n in nodes {
            bytes(&mut g, 1, n);
        }
        bytes(&mut g, 2, b"handmade");
        for t in initializers {
            bytes(&mut g, 5, t);
        }
        bytes(&mut g, 11, &float_value("x", Some(&[1, 3, 128, 128])));
        bytes(&mut g, 12, &float_value("y", None));
        let mut opset = vec![];
        bytes(&mut opset, 1, b"");
        int(&mut opset, 2, 13);
        let mut m = vec![];
        int(&mut m, 1, 7);
        bytes(&mut m, 7, &g);
        bytes(&mut m, 8, &opset);
        m
    }
}

/// The elements of the handmade models' output when it has the input's shape.
const HANDMADE_OUTPUT: usize = 3 * 128 * 128;

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line =
        status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs `load` (a model load that must fail) on its own thread and returns its error text,
/// asserting that it came within a second and that the process's peak resident memory grew
/// by less than 200 MB meanwhile (other tests run at the same time, so a little growth is
/// theirs). A load still running after 10 s fails the test rather than hanging it.
fn refused_quickly<E: std::fmt::Display>(what: &str, load: impl FnOnce() -> Result<(), E> + Send + 'static) -> String {
    use std::time::{Duration, Instant};
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load().err().map(|e| e.to_string()));
    });
    let result =
        rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what}: still loading after 10 s"));
    let took = started.elapsed();
    let grew_mb = status_kb("VmHWM:").saturating_sub(before) / 1024;
    let err = result.unwrap_or_else(|| panic!("{what}: loads"));
    assert!(took < Duration::from_secs(1), "{what}: took {took:?} ({err})");
    assert!(grew_mb < 200, "{what}: peak memory grew by {grew_mb} MB ({err})");
    assert!(err.contains("fetch-models.sh"), "{what}: {err}");
    err
}

/// Loads handmade model bytes the way the element loads the detector.
fn load_bytes(bytes: Vec<u8>) -> Result<(), gstfacemark::ModelError> {
    use gstfacemark::core::model::Net;
    Net::from_bytes(std::path::Path::new("handmade.onnx"), &bytes, 128, &[HANDMADE_OUTPUT]).map(drop)
}

/// A named pipe, a folder or an oversized file as a model path is refused before anything is
/// read: opening a pipe with no writer would block the loader for ever, and reading a huge file
/// would take its size in memory.
#[test]
fn model_paths_that_are_not_regular_files_are_refused() {
    use gstfacemark::core::model::{DETECTOR_FILE, Net, Runtime};
    let dir = std::env::temp_dir().join(format!("facemark-not-a-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.onnx");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let path = fifo.clone();
    let err =
        refused_quickly("a FIFO", move || Net::load_with(&path, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop));
    assert!(err.contains("pipe.onnx") && err.contains("not a regular file"), "{err}");

    // The same through the element's loader, the FIFO standing for the detector.
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::rename(&fifo, models.join(DETECTOR_FILE)).unwrap();
    let err = refused_quickly("a FIFO in the model folder", move || {
        gstfacemark::FaceMarker::new(&models, gstfacemark::Config::default()).map(drop)
    });
    assert!(err.contains(DETECTOR_FILE) && err.contains("not a regular file"), "{err}");

    let folder = dir.clone();
    let err =
        refused_quickly("a folder", move || Net::load_with(&folder, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop));
    assert!(err.contains("not a regular file"), "{err}");

    // Sparse: it takes no room on disk.
    let huge = dir.join("huge.onnx");
    std::fs::File::create(&huge).unwrap().set_len(1 << 40).unwrap();
    let err = refused_quickly("a 1 TiB file", move || {
        Net::load_with(&huge, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop)
    });
    assert!(err.contains("huge.onnx") && err.contains("larger than"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Initializers that declare more values than they hold, or more than any face model has, are
/// refused before anything is allocated for them.
#[test]
fn huge_initializers_are_refused() {
    use onnx_bytes::{FLOAT, model, node, tensor};
    // The same graph with a small initializer loads: the models below differ only in `w`.
    let add_w = |w: Vec<u8>| model(&[node("Add", &["x", "w"], "y", &[])], &[w]);
    load_bytes(add_w(tensor("w", FLOAT, &[1], &1f32.to_le_bytes()))).unwrap();
    for (what, dims, raw) in [
        ("2^40 values and no data", &[1i64 << 20, 1 << 20][..], &[][..]),
        ("2^40 values and 4 bytes", &[1 << 20, 1 << 20], &[0u8; 4][..]),
        ("dims whose product overflows", &[1 << 32, 1 << 32, 1 << 32], &[0; 4]),
        ("16 values and 4 bytes", &[16], &[0; 4]),
    ] {
        let err = refused_quickly(what, move || load_bytes(add_w(tensor("w", FLOAT, dims, raw))));
        assert!(err.contains("handmade.onnx") && err.contains("tensor \"w\""), "{what}: {err}");
    }
}

/// ConstantOfShape asking for 2^28 values (1 GiB of floats), 2^40 values or an overflowing
/// shape, directly or from a computed shape: refused before tract allocates the result (it
/// evaluates constant nodes while it loads a model, and only then looks at their size).
#[test]
fn huge_constant_of_shape_is_refused() {
    use onnx_bytes::{FLOAT, int_attribute, int64s, model, node, tensor, tensor_attribute};
    // Ones, so that the values are written (zeroed memory need not be resident).
    let one = || [tensor_attribute("value", tensor("one", FLOAT, &[1], &1f32.to_le_bytes()))];
    for (what, shape) in [
        ("2^28 values", &[1i64 << 14, 1 << 14][..]),
        ("2^40 values", &[1 << 20, 1 << 20]),
        ("an overflowing shape", &[1 << 32, 1 << 32, 1 << 32]),
    ] {
        let bytes = model(&[node("ConstantOfShape", &["s"], "y", &one())], &[int64s("s", shape)]);
        let err = refused_quickly(what, move || load_bytes(bytes));
        assert!(err.contains("ConstantOfShape"), "{what}: {err}");
    }
    let computed = model(
        &[node("Concat", &["a", "b"], "s", &[int_attribute("axis", 0)]), node("ConstantOfShape", &["s"], "y", &one())],
        &[int64s("a", &[1 << 14]), int64s("b", &[1 << 14])],
    );
    let err = refused_quickly("a computed shape", move || load_bytes(computed));
    assert!(err.contains("ConstantOfShape"), "{err}");
}

/// Tensors that would take gigabytes although the file is small: a broadcast of two constants
/// (which tract would compute while loading), a broadcast, a padding and a convolution of the
/// input (computed when the model runs, by tract or the fused engine), and tensors that each fit
/// but add up to too much.
#[test]
fn huge_computed_tensors_are_refused() {
    use onnx_bytes::{FLOAT, int64s, model, node, tensor};
    let ones = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| 1f32.to_le_bytes()).collect() };
    let constants = model(
        &[node("Add", &["a", "b"], "y", &[])],
        &[tensor("a", FLOAT, &[1 << 14, 1], &ones(1 << 14)), tensor("b", FLOAT, &[1, 1 << 14], &ones(1 << 14))],
    );
    let err = refused_quickly("a broadcast of constants to 2^28 values", move || load_bytes(constants));
    assert!(err.contains("constants only"), "{err}");

    // Each is computed from the input `x` [1, 3, 128, 128].
    let cases = [
        (
            "a broadcast of the input to 3 * 2^28 values",
            vec![node("Add", &["x", "c"], "y", &[])],
            vec![tensor("c", FLOAT, &[1 << 14, 1, 1, 1], &ones(1 << 14))],
            "more than the",
        ),
        (
            "a padding of the input to 3 * 2^30 values",
            vec![node("Pad", &["x", "pads"], "y", &[])],
            vec![int64s("pads", &[0, 0, 1 << 14, 1 << 14, 0, 0, 1 << 14, 1 << 14])],
            "more than the",
        ),
        (
            "a 1x1 convolution of the input to 2^14 channels (2^28 values)",
            vec![node("Conv", &["x", "w"], "y", &[])],
            vec![tensor("w", FLOAT, &[1 << 14, 3, 1, 1], &ones(3 << 14))],
            "more than the",
        ),
        (
            "five tensors of 300 * 3 * 128 * 128 values",
            vec![
                node("Add", &["x", "c"], "y1", &[]),
                node("Add", &["y1", "c"], "y2", &[]),
                node("Add", &["y2", "c"], "y3", &[]),
                node("Add", &["y3", "c"], "y4", &[]),
                node("Add", &["y4", "c"], "y", &[]),
            ],
            vec![tensor("c", FLOAT, &[300, 1, 1, 1], &ones(300))],
            "together",
        ),
    ];
    for (what, nodes, initializers, reason) in cases {
        let bytes = model(&nodes, &initializers);
        let err = refused_quickly(what, move || load_bytes(bytes));
        assert!(err.contains(reason), "{what}: {err}");
    }
}

/// The astronaut coming closer while moving: 4 px right, 2 px down and 1 % larger per frame.
fn approaching_face(k: usize) -> Rgb {
    let astronaut = Rgb::load("astronaut.png");
    let mut head = Rgb::filled(240, 240, [0; 3]);
    head.paste(&astronaut, -100, -10);
    let head = head.scaled(1.0 + 0.01 * k as f32);
    let mut canvas = Rgb::filled(640, 480, [128, 128, 128]);
    canvas.paste(&head, 60 + 4 * k as isize, 60 + 2 * k as isize);
    canvas
}

/// With `iris_interval: 2` each eye runs the iris model every other frame, in turn (half the
/// runs), and the irises of the frames between follow the moving eyes: every iris point within
/// 1.5 px of where running the model on every frame puts it.
#[test]
fn irises_between_runs_follow_the_eyes() {
    const FRAMES: usize = 20;
    let mut every = marker(Config::default());
    let mut alternate = marker(Config { iris_interval: 2, ..Config::default() });
    let mut worst = 0.0f32;
    for k in 0..FRAMES {
        let frame = approaching_face(k);
        let (a, b) = (run(&mut every, &frame), run(&mut alternate, &frame));
        assert_eq!((a.len(), b.len()), (1, 1), "frame {k}");
        assert_eq!(b[0].points().count(), 478, "frame {k}: irises every frame");
        for i in 468..478 {
            let (p, q) = (a[0].point(i).unwrap(), b[0].point(i).unwrap());
            let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
            worst = worst.max(d);
        }
    }
    // Each eye is 19 to 23 px wide, its iris radius 5 px; running the model on every frame, the
    // iris centre's place between the eye corners itself moves by up to 0.7 px from frame to
    // frame. Irises left where the last frame put them would be 4.5 px off.
    assert!(worst <= 1.5, "an iris point {worst:.2} px off");
    let (every, alternate) = (every.stats(), alternate.stats());
    assert_eq!(every.iris_runs, 2 * FRAMES as u64);
    // Both eyes on the first frame (nothing kept yet), then one eye per frame.
    assert_eq!(alternate.iris_runs, FRAMES as u64 + 1);
    assert_eq!(alternate.landmark_runs, every.landmark_runs);
}
