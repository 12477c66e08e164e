//! The `facemark` element through gst_check::Harness and small pipelines.

mod common;

use common::{Rgb, model_dir, reference};
use gst::glib;
use gst::prelude::*;
use gstfacemark::core::image::{PixelLayout, YuvColor};

fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacemark::plugin_register_static().unwrap();
    });
}

const FORMATS: [(&str, PixelLayout); 6] = [
    ("RGBA", PixelLayout::Rgba),
    ("BGRA", PixelLayout::Bgra),
    ("RGBx", PixelLayout::Rgbx),
    ("BGRx", PixelLayout::Bgrx),
    ("RGB", PixelLayout::Rgb),
    ("BGR", PixelLayout::Bgr),
];

/// The astronaut on a 642x361 canvas (odd width and height), offset by (65, 0).
fn odd_canvas() -> (Rgb, (f32, f32)) {
    let astronaut = Rgb::load("astronaut.png");
    let mut canvas = Rgb::filled(642, 361, [90, 100, 110]);
    canvas.paste(&astronaut, 65, 0);
    (canvas, (65.0, 0.0))
}

/// A harness whose every frame waits for its own inference (`mode=inline`).
fn harness(format: &str, width: usize, height: usize) -> gst_check::Harness {
    harness_with(format, width, height, "inline", "30/1")
}

fn harness_with(format: &str, width: usize, height: usize, mode: &str, framerate: &str) -> gst_check::Harness {
    init();
    let mut h = gst_check::Harness::new("facemark");
    let e = h.element().unwrap();
    e.set_property("model-dir", model_dir().to_str().unwrap());
    e.set_property_from_str("mode", mode);
    h.set_src_caps_str(&format!("video/x-raw,format={format},width={width},height={height},framerate={framerate}"));
    h
}

fn check_landmarks(lm: &[f64], (ox, oy): (f32, f32), what: &str) {
    for &(i, rx, ry) in &reference("astronaut.png") {
        let (px, py) = (lm[3 * i] as f32, lm[3 * i + 1] as f32);
        let d = ((px - rx - ox).powi(2) + (py - ry - oy).powi(2)).sqrt();
        assert!(d <= 3.0, "{what}: landmark {i} {d:.2} px off");
    }
}

/// A buffer holding `img` in `layout` with rows `stride` bytes apart, with a VideoMeta saying so.
fn buffer(img: &Rgb, format: &str, layout: PixelLayout, stride: usize, pts: u64) -> gst::Buffer {
    let mut buf = gst::Buffer::from_mut_slice(img.to_layout(layout, stride));
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts));
        gst_video::VideoMeta::add_full(
            b,
            gst_video::VideoFrameFlags::empty(),
            format.parse::<gst_video::VideoFormat>().unwrap(),
            img.width as u32,
            img.height as u32,
            &[0],
            &[stride as i32],
        )
        .unwrap();
    }
    buf
}

fn landmarks_of(meta: &gst_video::VideoRegionOfInterestMeta) -> Vec<f64> {
    let param = meta.param("facemark/landmarks").expect("landmarks param");
    let arr = param.get::<gst::Array>("landmarks").unwrap();
    arr.iter().map(|v| v.get::<f64>().unwrap()).collect()
}

/// Every format, an odd frame size, row padding: one face ROI meta whose landmarks match the
/// reference (shifted by the paste offset), drawing on the eye corners, padding untouched.
#[test]
fn every_format_odd_size_and_padding() {
    let (img, offset) = odd_canvas();
    for (format, layout) in FORMATS {
        for pad in [0usize, 36] {
            let bpp = layout.bytes_per_pixel();
            // GStreamer's default stride is 4-byte aligned; add padding beyond it.
            let stride = (img.width * bpp).div_ceil(4) * 4 + pad;
            let mut h = harness(format, img.width, img.height);
            let out = h.push_and_pull(buffer(&img, format, layout, stride, 0)).unwrap();
            let metas: Vec<_> = out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
            assert_eq!(metas.len(), 1, "{format} pad {pad}");
            let meta = &metas[0];
            assert_eq!(meta.roi_type(), "face");
            let (x, y, w, hh) = meta.rect();
            assert!(x > 65 + 150 && x < 65 + 220 && w > 50 && hh > 50 && y < 120, "{format}: rect {:?}", meta.rect());
            let lm = landmarks_of(meta);
            assert_eq!(lm.len(), 478 * 3);
            check_landmarks(&lm, offset, &format!("{format} pad {pad}"));
            let map = out.map_readable().unwrap();
            let [ro, go, bo] = layout.rgb_offsets();
            let at = |x: usize, y: usize| {
                let p = y * stride + x * bpp;
                [map[p + ro], map[p + go], map[p + bo]]
            };
            let (ex, ey) = (lm[3 * 33] as usize, lm[3 * 33 + 1] as usize);
            assert_eq!(at(ex, ey), [255, 48, 48], "{format}: right eye corner drawn");
            assert_eq!(at(5, 5), img.pixel(5, 5), "{format}: far pixel untouched");
            assert_eq!(at(641, 360), img.pixel(641, 360), "{format}: last pixel untouched");
            for row in 0..img.height {
                assert!(
                    map[row * stride + img.width * bpp..(row + 1) * stride].iter().all(|b| *b == 0xAB),
                    "{format}: padding"
                );
            }
        }
    }
}

/// `img` as 8-bit 4:2:0 (BT.601 limited range, what caps without colorimetry mean at this
/// size): planes Y, then U and V (I420) or interleaved UV (NV12), each row padded by `pad`
/// bytes of 0xAB. Returns the buffer's bytes, plane offsets and strides.
fn yuv420(img: &Rgb, nv12: bool, pad: usize) -> (Vec<u8>, Vec<usize>, Vec<usize>) {
    let color = YuvColor::bt601();
    let (w, h) = (img.width, img.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let ys = w.div_ceil(4) * 4 + pad;
    let cs = if nv12 { ys } else { cw.div_ceil(4) * 4 + pad };
    let yuv = |x: usize, y: usize| color.yuv(img.pixel(x.min(w - 1), y.min(h - 1)));
    let mut luma = vec![0xAB; ys * h];
    for y in 0..h {
        for x in 0..w {
            luma[y * ys + x] = yuv(x, y)[0];
        }
    }
    // Chroma: the mean of each 2 x 2 block.
    let chroma = |x: usize, y: usize, c: usize| {
        let sum: u32 =
            [(0, 0), (1, 0), (0, 1), (1, 1)].iter().map(|(dx, dy)| yuv(2 * x + dx, 2 * y + dy)[c] as u32).sum();
        (sum / 4) as u8
    };
    let mut bytes = luma;
    if nv12 {
        let mut uv = vec![0xAB; cs * ch];
        for y in 0..ch {
            for x in 0..cw {
                uv[y * cs + 2 * x] = chroma(x, y, 1);
                uv[y * cs + 2 * x + 1] = chroma(x, y, 2);
            }
        }
        bytes.extend(uv);
        (bytes, vec![0, ys * h], vec![ys, cs])
    } else {
        for c in [1, 2] {
            let mut plane = vec![0xAB; cs * ch];
            for y in 0..ch {
                for x in 0..cw {
                    plane[y * cs + x] = chroma(x, y, c);
                }
            }
            bytes.extend(plane);
        }
        (bytes, vec![0, ys * h, ys * h + cs * ch], vec![ys, cs, cs])
    }
}

/// I420 and NV12 are read and drawn on without conversion: an odd size, padded strides, the
/// landmarks on the reference, the eye corner drawn in luma and chroma, the far corners and
/// every padding byte untouched.
#[test]
fn yuv_formats_odd_size_and_padding() {
    let (img, offset) = odd_canvas();
    let contour = YuvColor::bt601().yuv([255, 48, 48]);
    for (format, nv12) in [("I420", false), ("NV12", true)] {
        for pad in [0usize, 20] {
            let (bytes, offsets, strides) = yuv420(&img, nv12, pad);
            let mut buf = gst::Buffer::from_mut_slice(bytes.clone());
            gst_video::VideoMeta::add_full(
                buf.get_mut().unwrap(),
                gst_video::VideoFrameFlags::empty(),
                format.parse::<gst_video::VideoFormat>().unwrap(),
                img.width as u32,
                img.height as u32,
                &offsets,
                &strides.iter().map(|s| *s as i32).collect::<Vec<_>>(),
            )
            .unwrap();
            let mut h = harness(format, img.width, img.height);
            let out = h.push_and_pull(buf).unwrap();
            let metas: Vec<_> = out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
            assert_eq!(metas.len(), 1, "{format} pad {pad}");
            let lm = landmarks_of(&metas[0]);
            check_landmarks(&lm, offset, &format!("{format} pad {pad}"));
            let map = out.map_readable().unwrap();
            let luma = |x: usize, y: usize| map[y * strides[0] + x];
            let chroma = |x: usize, y: usize| -> [u8; 2] {
                let (x, y) = (x / 2, y / 2);
                if nv12 {
                    let p = offsets[1] + y * strides[1] + 2 * x;
                    [map[p], map[p + 1]]
                } else {
                    [map[offsets[1] + y * strides[1] + x], map[offsets[2] + y * strides[2] + x]]
                }
            };
            let original = |x: usize, y: usize| {
                let p = y * strides[0] + x;
                bytes[p]
            };
            let (ex, ey) = (lm[3 * 33] as usize, lm[3 * 33 + 1] as usize);
            assert_eq!(luma(ex, ey), contour[0], "{format}: eye corner luma");
            assert_ne!(luma(ex, ey), original(ex, ey), "{format}: eye corner changed");
            assert_eq!(chroma(ex, ey), [contour[1], contour[2]], "{format}: eye chroma");
            // Far from the face nothing changes: every byte in the frame's left 60 columns
            // (the face starts 150 px in) and bottom 40 rows, and all padding.
            for (i, (a, b)) in map.iter().zip(&bytes).enumerate() {
                if a == b {
                    continue;
                }
                let (plane, p) = match offsets.iter().rposition(|o| *o <= i) {
                    Some(k) => (k, i - offsets[k]),
                    None => unreachable!(),
                };
                let (row, col) = (p / strides[plane], p % strides[plane]);
                let (x, y) = match (plane, nv12) {
                    (0, _) => (col, row),
                    (_, true) => (col / 2 * 2, row * 2),
                    (_, false) => (col * 2, row * 2),
                };
                assert!(
                    x >= 60 && x < img.width && y < img.height - 40,
                    "{format} pad {pad}: plane {plane} byte at ({col}, {row}) changed"
                );
            }
        }
    }
}

#[test]
fn no_face_no_meta_and_no_drawing() {
    let img = Rgb::filled(320, 240, [40, 80, 120]);
    let mut h = harness("RGBx", 320, 240);
    let out = h.push_and_pull(buffer(&img, "RGBx", PixelLayout::Rgbx, 1280, 0)).unwrap();
    assert_eq!(out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().count(), 0);
    let map = out.map_readable().unwrap();
    assert_eq!(&map[..], &img.to_layout(PixelLayout::Rgbx, 1280)[..]);
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-in").unwrap(), 1);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 1);
    // The whole frame, then (search-tiles, 4:3) its first 240x240 tile.
    assert_eq!(stats.get::<u64>("detector-runs").unwrap(), 2);
    assert!(stats.get::<f64>("mean-inference-ms").unwrap() > 0.0);
}

#[test]
fn draw_none_leaves_pixels_but_keeps_meta() {
    let (img, _) = odd_canvas();
    let mut h = harness("BGRx", img.width, img.height);
    h.element().unwrap().set_property_from_str("draw", "");
    let stride = img.width * 4;
    let out = h.push_and_pull(buffer(&img, "BGRx", PixelLayout::Bgrx, stride, 0)).unwrap();
    assert_eq!(out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().count(), 1);
    assert_eq!(&out.map_readable().unwrap()[..], &img.to_layout(PixelLayout::Bgrx, stride)[..]);
}

#[test]
fn properties_and_stats() {
    init();
    let e = gst::ElementFactory::make("facemark").build().unwrap();
    assert_eq!(e.property::<u32>("max-faces"), 1);
    assert_eq!(e.property::<f64>("min-detection-confidence"), 0.5);
    assert_eq!(e.property::<f64>("min-tracking-confidence"), 0.5);
    assert!(e.property::<bool>("tracking"));
    assert!(!e.property::<bool>("emit-messages"));
    assert_eq!(e.property::<u32>("detect-interval"), 30);
    assert_eq!(e.property::<u32>("iris-interval"), 1);
    let nicks = |v: glib::Value| -> Vec<String> {
        let (_, values) = glib::FlagsValue::from_value(&v).unwrap();
        values.iter().map(|f| f.nick().to_string()).collect()
    };
    assert_eq!(nicks(e.property_value("draw")), ["tesselation", "contours", "irises"]);
    e.set_property_from_str("draw", "box+keypoints");
    assert_eq!(nicks(e.property_value("draw")), ["box", "keypoints"]);
    let stats = e.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-in").unwrap(), 0);
    assert_eq!(stats.get::<u64>("dropped-inferences").unwrap(), 0);
    assert_eq!(stats.get::<f64>("mean-inference-ms").unwrap(), 0.0);
    assert_eq!(stats.get::<u64>("iris-runs").unwrap(), 0);
    let mode = e.property_value("mode");
    let (_, mode) = glib::EnumValue::from_value(&mode).unwrap();
    assert_eq!(mode.nick(), "auto");
}

/// `iris-interval=2`, set while playing: the iris model runs for both eyes of a new face, then
/// for one eye per frame; every frame still carries 478 points.
#[test]
fn iris_interval_halves_the_iris_runs() {
    let (canvas, offset) = odd_canvas();
    let mut h = harness("RGB", canvas.width, canvas.height);
    h.play();
    h.element().unwrap().set_property("iris-interval", 2u32);
    for k in 0..5u64 {
        let frame = buffer(&canvas, "RGB", PixelLayout::Rgb, canvas.width * 3, k * 33_333_333);
        let out = h.push_and_pull(frame).unwrap();
        let metas: Vec<_> = out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
        assert_eq!(metas.len(), 1, "frame {k}");
        let landmarks = landmarks_of(&metas[0]);
        assert_eq!(landmarks.len(), 478 * 3, "frame {k}");
        check_landmarks(&landmarks, offset, &format!("frame {k}"));
    }
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("landmark-runs").unwrap(), 5);
    assert_eq!(stats.get::<u64>("iris-runs").unwrap(), 2 + 4);
}

/// `runtime`: auto runs the three models on the fused engine, tract on tract, both mark the
/// face where the reference has it, and `stats` says which ran.
#[test]
fn runtime_property_picks_the_engine() {
    let (canvas, offset) = odd_canvas();
    init();
    for (runtime, expect) in [("auto", "fused"), ("tract", "tract")] {
        // Set before the harness takes the element: the models load at NULL -> READY.
        let e = gst::ElementFactory::make("facemark").build().unwrap();
        let default = e.property_value("runtime");
        let (_, nick) = glib::EnumValue::from_value(&default).unwrap();
        assert_eq!(nick.nick(), "auto");
        e.set_property("model-dir", model_dir().to_str().unwrap());
        e.set_property_from_str("mode", "inline");
        e.set_property_from_str("runtime", runtime);
        let mut h = gst_check::Harness::with_element(&e, Some("sink"), Some("src"));
        h.set_src_caps_str(&format!(
            "video/x-raw,format=RGB,width={},height={},framerate=30/1",
            canvas.width, canvas.height
        ));
        h.play();
        let out = h.push_and_pull(buffer(&canvas, "RGB", PixelLayout::Rgb, canvas.width * 3, 0)).unwrap();
        let metas: Vec<_> = out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
        assert_eq!(metas.len(), 1, "{runtime}");
        check_landmarks(&landmarks_of(&metas[0]), offset, runtime);
        let stats = h.element().unwrap().property::<gst::Structure>("stats");
        let used = stats.get::<String>("runtime").unwrap();
        assert_eq!(used.matches(expect).count(), 3, "{runtime}: {used}");
    }
}

/// `mode=latest`: the first frame goes to the idle worker and, with no frame duration to wait
/// for, leaves unannotated; a frame arriving while the worker is busy counts as dropped; later
/// frames carry the newest finished result, which matches the reference.
#[test]
fn latest_mode_never_waits_for_inference() {
    let (img, offset) = odd_canvas();
    let mut h = harness_with("RGBx", img.width, img.height, "latest", "0/1");
    let stride = img.width * 4;
    let frame = |k: u64| buffer(&img, "RGBx", PixelLayout::Rgbx, stride, k);
    let rois = |b: &gst::Buffer| {
        b.iter_meta::<gst_video::VideoRegionOfInterestMeta>().map(|m| landmarks_of(&m)).collect::<Vec<_>>()
    };
    assert!(rois(&h.push_and_pull(frame(0)).unwrap()).is_empty());
    // Inference takes milliseconds; this frame comes right after the first one.
    h.push_and_pull(frame(1)).unwrap();
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("dropped-inferences").unwrap(), 1);
    let mut found = None;
    for k in 2..1000 {
        if let Some(lm) = rois(&h.push_and_pull(frame(k)).unwrap()).pop() {
            found = Some((k, lm));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (frames, lm) = found.expect("a result reaches the frames");
    check_landmarks(&lm, offset, "latest");
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    let get = |f: &str| stats.get::<u64>(f).unwrap();
    assert_eq!(get("frames-in"), frames + 1);
    assert_eq!(get("frames-in"), get("inferences") + get("dropped-inferences"));
    assert!(get("inferences") >= 1);
}

/// `mode=auto` follows upstream: a live source gets `latest` (the first frame leaves before its
/// inference is done: no frame duration to wait for), a non-live one `inline` (every frame
/// carries its own result).
#[test]
fn auto_mode_follows_liveness() {
    for live in [false, true] {
        let first = facemark_messages("0/1", live, 1).remove(0);
        let faces = first.get::<gst::Array>("faces").unwrap().len();
        assert_eq!(faces, if live { 0 } else { 1 }, "live={live}");
    }
}

/// The `facemark` messages of `frames` frames (33.3 ms apart) of the astronaut canvas pushed
/// through appsrc (`live` or not, caps with `framerate`) ! facemark emit-messages=true ! fakesink.
fn facemark_messages(framerate: &str, live: bool, frames: u64) -> Vec<gst::Structure> {
    init();
    let (img, _) = odd_canvas();
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(
            &format!("video/x-raw,format=RGB,width=642,height=361,framerate={framerate}").parse::<gst::Caps>().unwrap(),
        )
        .format(gst::Format::Time)
        .is_live(live)
        .build();
    let fm = gst::ElementFactory::make("facemark")
        .property("model-dir", model_dir().to_str().unwrap())
        .property("emit-messages", true)
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap();
    pipeline.add_many([src.upcast_ref(), &fm, &sink]).unwrap();
    gst::Element::link_many([src.upcast_ref(), &fm, &sink]).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let stride = (642 * 3usize).div_ceil(4) * 4;
    for k in 0..frames {
        let pts = k * 33_333_333;
        src.push_buffer(buffer(&img, "RGB", PixelLayout::Rgb, stride, pts)).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let mut seen = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(m) if m.structure().is_some_and(|s| s.name() == "facemark") => {
                seen.push(m.structure().unwrap().to_owned())
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    seen
}

/// `emit-messages`: one `facemark` element message per frame with the documented fields.
#[test]
fn element_messages() {
    let seen = facemark_messages("30/1", false, 3);
    assert_eq!(seen.len(), 3);
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.get::<u64>("timestamp").unwrap(), k as u64 * 33_333_333);
        // Non-live upstream: each frame carries its own result.
        assert_eq!(s.get::<u64>("faces-timestamp").unwrap(), k as u64 * 33_333_333);
        assert_eq!(s.get::<i32>("frame-width").unwrap(), 642);
        assert_eq!(s.get::<i32>("frame-height").unwrap(), 361);
        let faces = s.get::<gst::Array>("faces").unwrap();
        assert_eq!(faces.len(), 1);
        let face = faces.first().unwrap().get::<gst::Structure>().unwrap();
        assert_eq!(face.name(), "face");
        assert!(face.get::<f64>("score").unwrap() > 0.5);
        let (x, w) = (face.get::<f64>("x").unwrap(), face.get::<f64>("width").unwrap());
        assert!(
            x > 200.0 && w > 50.0 && face.get::<f64>("y").unwrap() >= 0.0 && face.get::<f64>("height").unwrap() > 50.0
        );
        assert_eq!(face.get::<gst::Array>("landmarks").unwrap().len(), 478 * 3);
    }
}

fn ready_error(model_dir: &std::path::Path) -> String {
    init();
    let e = gst::ElementFactory::make("facemark").property("model-dir", model_dir.to_str().unwrap()).build().unwrap();
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    assert!(e.set_state(gst::State::Ready).is_err(), "READY must fail");
    let msg = bus.pop_filtered(&[gst::MessageType::Error]).expect("an error message");
    let gst::MessageView::Error(err) = msg.view() else { unreachable!() };
    e.set_state(gst::State::Null).unwrap();
    format!("{} | {}", err.error(), err.debug().unwrap_or_default())
}

#[test]
fn missing_model_folder_is_an_element_error() {
    let err = ready_error(std::path::Path::new("/nonexistent/models"));
    assert!(err.contains("/nonexistent/models"), "{err}");
    assert!(err.contains("scripts/fetch-models.sh"), "{err}");
}

#[test]
fn text_file_as_model_is_an_element_error() {
    let dir = std::env::temp_dir().join(format!("facemark-element-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(model_dir().join("face_detection_short_range.onnx"), dir.join("face_detection_short_range.onnx"))
        .unwrap();
    std::fs::write(dir.join("face_landmark.onnx"), "hello, I am not a model\n").unwrap();
    let err = ready_error(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("face_landmark.onnx") && err.contains("not a usable ONNX model"), "{err}");
    assert!(err.contains("scripts/fetch-models.sh"), "{err}");
}
