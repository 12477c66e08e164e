//! AV1 SVC from headless Chromium (`scalabilityMode` L1T3 and L3T3: one stream whose OBUs carry
//! temporal and spatial layer ids). whipcastsrc keeps the dependency descriptor extension and
//! `a=extmap-allow-mixed` in its answer where offered; the recording
//! of every layer decodes with zero errors in GStreamer and ffmpeg, and `rtpav1depay-rs`
//! `max-temporal-layer` / `max-spatial-layer` record one operating point of it.

use std::process::Command;
use std::sync::Mutex;

use gst::prelude::*;
use whipcast_tests::*;

/// One Chromium at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Records one Chromium AV1 session in `mode` through `depay` (rtpav1depay-rs with its
/// properties) into a WebM file each; returns the publisher's report and the files.
fn record(mode: &str, depays: &[&str]) -> (String, Vec<std::path::PathBuf>) {
    init();
    let port = free_port();
    let files: Vec<_> = (0..depays.len()).map(|i| output_path(&format!("svc-{mode}-{i}.webm"))).collect();
    let mut launch = format!("whipcastsrc name=w address=127.0.0.1 port={port} timeout=3 w.video_0 ! tee name=t ");
    for (depay, file) in depays.iter().zip(&files) {
        launch += &format!("t. ! queue ! {depay} ! av1obufix ! webmmux ! filesink location={} ", file.display());
    }
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let script = peers().join("chromium/publish.mjs");
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test does)");
    let url = format!("http://127.0.0.1:{port}/whip/live");
    let mut command = Command::new("node");
    command.arg(script).args(["--url", &url, "--codec", "AV1", "--seconds", "6", "--scalability-mode", mode]);
    let text = report(spawn(&mut command));
    let bus = pipeline.bus().unwrap();
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(15), &[gst::MessageType::Eos, gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))), "{msg:?}");
    (text, files)
}

/// Frames, size and the highest (temporal, spatial) layer ids in a recording, which must decode
/// with zero errors in GStreamer and in ffmpeg.
fn inspect(file: &std::path::Path) -> (usize, (i32, i32), (u8, u8)) {
    let decoded = decode_file(file);
    assert!(decoded.report.errors.is_empty(), "{}: {:?}", file.display(), decoded.report.errors);
    let ffmpeg = ffmpeg_decode(file);
    assert!(ffmpeg.errors.is_empty(), "{}: ffmpeg: {:?}", file.display(), ffmpeg.errors);
    let caps = decoded.caps.unwrap_or_else(|| panic!("{}: nothing decoded", file.display()));
    let s = caps.structure(0).unwrap();
    let size = (s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap());
    let mut top = (0, 0);
    for tu in demuxed(file) {
        for (_, ext, _) in normalized_obus(&tu) {
            if let Some(ext) = ext {
                top = (top.0.max(ext >> 5), top.1.max((ext >> 3) & 3));
            }
        }
    }
    eprintln!(
        "{}: GStreamer decoded {} frames ({size:?} last), ffmpeg {} frames; top layer ids (temporal, spatial) {top:?}",
        file.display(),
        decoded.frames,
        ffmpeg.video_frames
    );
    (decoded.frames, size, top)
}

/// The temporal units of a WebM file's AV1 track.
fn demuxed(file: &std::path::Path) -> Vec<Vec<u8>> {
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! matroskademux ! video/x-av1 ! appsink name=sink sync=false",
        file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut tus = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        tus.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    tus
}

#[test]
fn chromium_av1_l1t3_records_every_layer_or_the_base_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (text, files) = record("L1T3", &["rtpav1depay-rs", "rtpav1depay-rs max-temporal-layer=0"]);
    assert!(text.contains("\"scalabilityMode\":\"L1T3\""), "Chromium sent L1T3: {text}");
    let (all, size, top) = inspect(&files[0]);
    assert_eq!(top, (2, 0), "three temporal layers in the stream");
    let (base, base_size, base_top) = inspect(&files[1]);
    assert_eq!((base_size, base_top), (size, (0, 0)));
    // L1T3: T0 is every fourth frame (T0 T2 T1 T2 ...).
    assert!(base * 4 <= all + 8 && base * 4 + 8 >= all, "{base} base frames of {all}");
}

#[test]
fn chromium_av1_l3t3_records_every_layer_or_the_smallest() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (text, files) = record("L3T3", &["rtpav1depay-rs", "rtpav1depay-rs max-spatial-layer=0"]);
    assert!(text.contains("\"scalabilityMode\":\"L3T3"), "Chromium sent L3T3: {text}");
    let (all, size, top) = inspect(&files[0]);
    assert_eq!(top.1, 2, "three spatial layers in the stream");
    let (smallest, small_size, small_top) = inspect(&files[1]);
    assert_eq!(small_top.1, 0);
    // Each spatial layer is twice the size of the one below (L3: 1:4, 1:2, 1:1).
    assert_eq!((small_size.0 * 4, small_size.1 * 4), size, "{all} and {smallest} frames");
}
