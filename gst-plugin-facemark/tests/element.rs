//! The `facemark` element through gst_check::Harness and small pipelines.

mod common;

use common::{Rgb, model_dir, reference};
use gst::glib;
use gst::prelude::*;
use gstfacemark::core::image::PixelLayout;

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

fn harness(format: &str, width: usize, height: usize) -> gst_check::Harness {
    init();
    let mut h = gst_check::Harness::new("facemark");
    h.element()
        .unwrap()
        .set_property("model-dir", model_dir().to_str().unwrap());
    h.set_src_caps_str(&format!(
        "video/x-raw,format={format},width={width},height={height},framerate=30/1"
    ));
    h
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
    let (img, (ox, oy)) = odd_canvas();
    let refs = reference("astronaut.png");
    for (format, layout) in FORMATS {
        for pad in [0usize, 36] {
            let bpp = layout.bytes_per_pixel();
            // GStreamer's default stride is 4-byte aligned; add padding beyond it.
            let stride = (img.width * bpp).div_ceil(4) * 4 + pad;
            let mut h = harness(format, img.width, img.height);
            let out = h
                .push_and_pull(buffer(&img, format, layout, stride, 0))
                .unwrap();
            let metas: Vec<_> = out
                .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                .collect();
            assert_eq!(metas.len(), 1, "{format} pad {pad}");
            let meta = &metas[0];
            assert_eq!(meta.roi_type(), "face");
            let (x, y, w, hh) = meta.rect();
            assert!(
                x > 65 + 150 && x < 65 + 220 && w > 50 && hh > 50 && y < 120,
                "{format}: rect {:?}",
                meta.rect()
            );
            let lm = landmarks_of(meta);
            assert_eq!(lm.len(), 478 * 3);
            for &(i, rx, ry) in &refs {
                let (px, py) = (lm[3 * i] as f32, lm[3 * i + 1] as f32);
                let d = ((px - rx - ox).powi(2) + (py - ry - oy).powi(2)).sqrt();
                assert!(d <= 3.0, "{format} pad {pad}: landmark {i} {d:.2} px off");
            }
            let map = out.map_readable().unwrap();
            let [ro, go, bo] = layout.rgb_offsets();
            let at = |x: usize, y: usize| {
                let p = y * stride + x * bpp;
                [map[p + ro], map[p + go], map[p + bo]]
            };
            let (ex, ey) = (lm[3 * 33] as usize, lm[3 * 33 + 1] as usize);
            assert_eq!(
                at(ex, ey),
                [255, 48, 48],
                "{format}: right eye corner drawn"
            );
            assert_eq!(at(5, 5), img.pixel(5, 5), "{format}: far pixel untouched");
            assert_eq!(
                at(641, 360),
                img.pixel(641, 360),
                "{format}: last pixel untouched"
            );
            for row in 0..img.height {
                assert!(
                    map[row * stride + img.width * bpp..(row + 1) * stride]
                        .iter()
                        .all(|b| *b == 0xAB),
                    "{format}: padding"
                );
            }
        }
    }
}

#[test]
fn no_face_no_meta_and_no_drawing() {
    let img = Rgb::filled(320, 240, [40, 80, 120]);
    let mut h = harness("RGBx", 320, 240);
    let out = h
        .push_and_pull(buffer(&img, "RGBx", PixelLayout::Rgbx, 1280, 0))
        .unwrap();
    assert_eq!(
        out.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .count(),
        0
    );
    let map = out.map_readable().unwrap();
    assert_eq!(&map[..], &img.to_layout(PixelLayout::Rgbx, 1280)[..]);
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-in").unwrap(), 1);
    assert_eq!(stats.get::<u64>("inferences").unwrap(), 1);
    assert_eq!(stats.get::<u64>("detector-runs").unwrap(), 1);
    assert!(stats.get::<f64>("mean-inference-ms").unwrap() > 0.0);
}

#[test]
fn draw_none_leaves_pixels_but_keeps_meta() {
    let (img, _) = odd_canvas();
    let mut h = harness("BGRx", img.width, img.height);
    h.element().unwrap().set_property_from_str("draw", "");
    let stride = img.width * 4;
    let out = h
        .push_and_pull(buffer(&img, "BGRx", PixelLayout::Bgrx, stride, 0))
        .unwrap();
    assert_eq!(
        out.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .count(),
        1
    );
    assert_eq!(
        &out.map_readable().unwrap()[..],
        &img.to_layout(PixelLayout::Bgrx, stride)[..]
    );
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
    let nicks = |v: glib::Value| -> Vec<String> {
        let (_, values) = glib::FlagsValue::from_value(&v).unwrap();
        values.iter().map(|f| f.nick().to_string()).collect()
    };
    assert_eq!(
        nicks(e.property_value("draw")),
        ["tesselation", "contours", "irises"]
    );
    e.set_property_from_str("draw", "box+keypoints");
    assert_eq!(nicks(e.property_value("draw")), ["box", "keypoints"]);
    let stats = e.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("frames-in").unwrap(), 0);
    assert_eq!(stats.get::<u64>("dropped-inferences").unwrap(), 0);
    assert_eq!(stats.get::<f64>("mean-inference-ms").unwrap(), 0.0);
}

/// `emit-messages`: one `facemark` element message per frame with the documented fields.
#[test]
fn element_messages() {
    init();
    let (img, _) = odd_canvas();
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(
            &"video/x-raw,format=RGB,width=642,height=361,framerate=30/1"
                .parse::<gst::Caps>()
                .unwrap(),
        )
        .format(gst::Format::Time)
        .build();
    let fm = gst::ElementFactory::make("facemark")
        .property("model-dir", model_dir().to_str().unwrap())
        .property("emit-messages", true)
        .build()
        .unwrap();
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()
        .unwrap();
    pipeline.add_many([src.upcast_ref(), &fm, &sink]).unwrap();
    gst::Element::link_many([src.upcast_ref(), &fm, &sink]).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let stride = (642 * 3usize).div_ceil(4) * 4;
    for k in 0..3u64 {
        src.push_buffer(buffer(
            &img,
            "RGB",
            PixelLayout::Rgb,
            stride,
            k * 33_333_333,
        ))
        .unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let mut seen = Vec::new();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(m)
                if m.structure().is_some_and(|s| s.name() == "facemark") =>
            {
                seen.push(m.structure().unwrap().to_owned())
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{e:?}"),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(seen.len(), 3);
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.get::<u64>("timestamp").unwrap(), k as u64 * 33_333_333);
        assert_eq!(s.get::<i32>("frame-width").unwrap(), 642);
        assert_eq!(s.get::<i32>("frame-height").unwrap(), 361);
        let faces = s.get::<gst::Array>("faces").unwrap();
        assert_eq!(faces.len(), 1);
        let face = faces.first().unwrap().get::<gst::Structure>().unwrap();
        assert_eq!(face.name(), "face");
        assert!(face.get::<f64>("score").unwrap() > 0.5);
        let (x, w) = (
            face.get::<f64>("x").unwrap(),
            face.get::<f64>("width").unwrap(),
        );
        assert!(
            x > 200.0
                && w > 50.0
                && face.get::<f64>("y").unwrap() >= 0.0
                && face.get::<f64>("height").unwrap() > 50.0
        );
        assert_eq!(face.get::<gst::Array>("landmarks").unwrap().len(), 478 * 3);
    }
}

fn ready_error(model_dir: &std::path::Path) -> String {
    init();
    let e = gst::ElementFactory::make("facemark")
        .property("model-dir", model_dir.to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    e.set_bus(Some(&bus));
    assert!(e.set_state(gst::State::Ready).is_err(), "READY must fail");
    let msg = bus
        .pop_filtered(&[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(err) = msg.view() else {
        unreachable!()
    };
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
    std::fs::copy(
        model_dir().join("face_detection_short_range.onnx"),
        dir.join("face_detection_short_range.onnx"),
    )
    .unwrap();
    std::fs::write(dir.join("face_landmark.onnx"), "hello, I am not a model\n").unwrap();
    let err = ready_error(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("face_landmark.onnx") && err.contains("not a usable ONNX model"),
        "{err}"
    );
    assert!(err.contains("scripts/fetch-models.sh"), "{err}");
}
