//! End to end: real WHIP publishers written by others (gst-plugins-rs `whipsink` and
//! `whipclientsink`, in a separate process) publish to whipserversrc; the recording is demuxed
//! and decoded and must hold at least 95% of the frames the publisher reports sending; EOS must
//! follow the publisher's DELETE, or its disappearance, within the timeout.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::*;

/// One publisher at a time: two AV1 encoders at once would starve this 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

const SECONDS: u32 = 10;

struct Recording {
    pipeline: gst::Pipeline,
    port: u16,
    file: std::path::PathBuf,
}

fn record(name: &str, tail: &str) -> Recording {
    init();
    let port = free_port();
    let file = output_path(name);
    let launch = format!(
        "whipserversrc name=w address=127.0.0.1 port={port} timeout=3 {}",
        tail.replace("FILE", &file.display().to_string())
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    Recording { pipeline, port, file }
}

fn publisher(port: u16, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_whip-publish"))
        .arg(format!("http://127.0.0.1:{port}/whip/live"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("publisher starts")
}

fn frames_sent(child: Child) -> u64 {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("\"ok\":true"), "publisher failed: {text}");
    let n = text.split("\"frames_sent\":").nth(1).unwrap();
    n.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().unwrap()
}

/// Waits for EOS (the session ended) and stops the pipeline; returns how long EOS took.
fn wait_eos(rec: &Recording, within: Duration) -> Duration {
    let start = Instant::now();
    let bus = rec.pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(within.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    rec.pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => start.elapsed(),
        Some(gst::MessageView::Error(e)) => panic!("recording failed: {} {:?}", e.error(), e.debug()),
        _ => panic!("no EOS within {within:?}"),
    }
}

fn assert_recorded(rec: &Recording, sent: u64) {
    let decoded = decode_file(&rec.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(
        decoded.frames as u64 * 100 >= sent * 95,
        "{}: {} frames decoded of {sent} sent",
        rec.file.display(),
        decoded.frames
    );
}

fn publish_and_check(name: &str, tail: &str, args: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record(name, tail);
    let seconds = SECONDS.to_string();
    let mut all = vec!["--seconds", &seconds];
    all.extend_from_slice(args);
    let sent = frames_sent(publisher(rec.port, &all));
    assert!(sent >= u64::from(SECONDS) * 25, "the publisher sent only {sent} frames");
    // The publisher's DELETE ends the session: EOS at once, well before the 3 s timeout.
    let took = wait_eos(&rec, Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "EOS {took:?} after DELETE");
    assert_recorded(&rec, sent);
}

const AV1_WEBM: &str = "w.video_0 ! rtpav1depay-rs ! av1obufix ! webmmux name=mux ! filesink location=FILE";
const H264_MP4: &str = "w.video_0 ! rtph264depay ! h264parse ! mp4mux ! filesink location=FILE";

#[test]
fn whipsink_av1_with_opus_to_webm() {
    publish_and_check(
        "whipsink-av1.webm",
        &format!("{AV1_WEBM} w.audio_0 ! rtpopusdepay ! opusparse ! mux."),
        &["--sink", "whipsink", "--codec", "av1", "--audio"],
    );
}

#[test]
fn whipsink_h264_to_mp4() {
    publish_and_check("whipsink-h264.mp4", H264_MP4, &["--sink", "whipsink", "--codec", "h264"]);
}

#[test]
fn whipsink_vp8_to_webm() {
    publish_and_check(
        "whipsink-vp8.webm",
        "w.video_0 ! rtpvp8depay ! webmmux ! filesink location=FILE",
        &["--sink", "whipsink", "--codec", "vp8"],
    );
}

#[test]
fn whipclientsink_h264_with_opus_to_mp4() {
    publish_and_check(
        "whipclientsink-h264.mp4",
        "w.video_0 ! rtph264depay ! h264parse ! mp4mux name=mux ! filesink location=FILE w.audio_0 ! rtpopusdepay ! opusparse ! mux.",
        &["--sink", "whipclientsink", "--codec", "h264", "--audio"],
    );
}

#[test]
fn publisher_gone_without_delete_ends_in_eos_and_a_finalized_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record("vanished.webm", AV1_WEBM);
    let mut child = publisher(rec.port, &["--seconds", "30", "--codec", "av1"]);
    // Publish for a while, then vanish as a crashed OBS would: no DELETE.
    std::thread::sleep(Duration::from_secs(6));
    child.kill().unwrap();
    let _ = child.wait();
    let took = wait_eos(&rec, Duration::from_secs(15));
    assert!(took <= Duration::from_secs(3 + 3), "EOS {took:?} after the publisher vanished (timeout=3)");
    let decoded = decode_file(&rec.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(decoded.frames >= 60, "{} frames in the finalized file", decoded.frames);
}
