//! End to end: real WHIP publishers written by others (gst-plugins-rs `whipsink` and
//! `whipclientsink`, in a separate process) publish to whipcastsrc; the recording is demuxed
//! and decoded and must hold at least 95% of the frames the publisher reports sending; EOS must
//! follow the publisher's DELETE, or its disappearance, within the timeout.

use std::process::{Child, Command};
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
        "whipcastsrc name=w address=127.0.0.1 port={port} timeout=3 {}",
        tail.replace("FILE", &file.display().to_string())
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    Recording { pipeline, port, file }
}

fn publisher(port: u16, args: &[&str]) -> Child {
    spawn(whip_publish_command(&format!("http://127.0.0.1:{port}/whip/live")).args(args))
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

/// How much of what a publisher sent must be in the file.
#[derive(Clone, Copy, PartialEq)]
enum Kept {
    /// At least 95 %: a publisher's first frames may go out before the connection is up.
    Most,
    /// Every frame, the last ones too (the session drains after the DELETE): the publisher starts
    /// with a key frame once connected.
    Every,
}

fn assert_recorded(rec: &Recording, sent: u64, kept: Kept) {
    let decoded = decode_file(&rec.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    let frames = decoded.frames as u64;
    let enough = match kept {
        Kept::Most => frames * 100 >= sent * 95,
        Kept::Every => frames == sent,
    };
    assert!(enough, "{}: {frames} frames decoded of {sent} sent", rec.file.display());
}

/// Records one publisher run and checks it: EOS soon after its DELETE, the frames it sent.
fn check_publisher(name: &str, tail: &str, start: impl FnOnce(u16) -> Child, frames_key: &str, kept: Kept) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record(name, tail);
    let text = report(start(rec.port));
    let sent = json_u64(&text, frames_key);
    assert!(sent >= u64::from(SECONDS) * 15, "the publisher sent only {sent} frames: {text}");
    // The publisher's DELETE ends the session: EOS at once, well before the 3 s timeout.
    let took = wait_eos(&rec, Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "EOS {took:?} after DELETE");
    assert_recorded(&rec, sent, kept);
}

fn publish_and_check(name: &str, tail: &str, args: &[&str]) {
    let seconds = SECONDS.to_string();
    let start = |port| {
        let mut all = vec!["--seconds", seconds.as_str()];
        all.extend_from_slice(args);
        publisher(port, &all)
    };
    check_publisher(name, tail, start, "frames_sent", Kept::Most);
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
fn whipsink_h265_to_mp4() {
    // No browser sends H.265 over WebRTC here; gst-plugins-rs whipsink with x265enc does.
    let tail = "video-codecs=H265 w.video_0 ! rtph265depay ! h265parse ! mp4mux ! filesink location=FILE";
    publish_and_check("whipsink-h265.mp4", tail, &["--sink", "whipsink", "--codec", "h265"]);
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

fn chromium(port: u16, codec: &str, audio: bool) -> Child {
    chromium_with(port, codec, audio, &[])
}

fn chromium_with(port: u16, codec: &str, audio: bool, extra: &[&str]) -> Child {
    let script = peers().join("chromium/publish.mjs");
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test does)");
    let (url, seconds) = (format!("http://127.0.0.1:{port}/whip/live"), SECONDS.to_string());
    let mut command = Command::new("node");
    command.arg(script).args(["--url", &url, "--codec", codec, "--seconds", &seconds]);
    if audio {
        command.arg("--audio");
    }
    spawn(command.args(extra))
}

/// The string value (still JSON-escaped) of `"key"` in a publisher's one-line JSON report.
fn json_str<'a>(text: &'a str, key: &str) -> &'a str {
    let after = text.split(&format!("\"{key}\":\"")).nth(1).unwrap_or_else(|| panic!("{key} missing in {text}"));
    let mut escaped = false;
    let end = after
        .char_indices()
        .find(|&(_, c)| {
            let close = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            close
        })
        .map_or(after.len(), |(i, _)| i);
    &after[..end]
}

#[test]
fn chromium_av1_with_opus_to_webm() {
    let tail = format!("{AV1_WEBM} w.audio_0 ! rtpopusdepay ! opusparse ! mux.");
    check_publisher("chromium-av1.webm", &tail, |port| chromium(port, "AV1", true), "framesSent", Kept::Most);
}

#[test]
fn chromium_ice_restart_by_patch_keeps_the_media_flowing() {
    // Four seconds in, the page calls restartIce() and PATCHes its new credentials with
    // `If-Match: *` (RFC 9725 4.4.2); it goes on only once its selected candidate pair uses the new credentials of both
    // sides, i.e. connectivity checks with them succeeded against our new ones.
    let start = |port| chromium_with(port, "AV1", false, &["--ice-restart-at", "4"]);
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record("chromium-ice-restart.webm", AV1_WEBM);
    let text = report(start(rec.port));
    assert_eq!(json_u64(&text, "patchStatus"), 200, "{text}");
    for (new, old) in [("localUfrag", "localUfragBefore"), ("remoteUfrag", "remoteUfragBefore"), ("etag", "etagBefore")]
    {
        assert_ne!(json_str(&text, new), json_str(&text, old), "{new}: {text}");
    }
    let sent = json_u64(&text, "framesSent");
    wait_eos(&rec, Duration::from_secs(10));
    // The frames of the 6 s after the restart are in the file too.
    assert_recorded(&rec, sent, Kept::Most);
}

#[test]
fn chromium_h264_to_mp4() {
    check_publisher("chromium-h264.mp4", H264_MP4, |port| chromium(port, "H264", false), "framesSent", Kept::Most);
}

/// libdatachannel (what OBS's WHIP output is built on) sending OBS's offer shape: no
/// candidates, session-level ICE attributes, audio first, no RTX, MID and RID on every packet.
fn obs_like(port: u16, codec: &str, extra: &[&str]) -> Child {
    let (url, seconds) = (format!("http://127.0.0.1:{port}/whip/live"), SECONDS.to_string());
    let mut command = obs_like_command();
    command.args(["--url", &url, "--codec", codec, "--seconds", &seconds, "--audio"]).args(extra);
    spawn(&mut command)
}

#[test]
fn obs_like_av1_with_opus_to_webm() {
    let tail = format!("{AV1_WEBM} w.audio_0 ! rtpopusdepay ! opusparse ! mux.");
    let start = |port| obs_like(port, "AV1", &["--start-at-keyframe"]);
    check_publisher("obs-av1.webm", &tail, start, "framesSent", Kept::Every);
}

#[test]
fn obs_like_h264_to_mp4() {
    let start = |port| obs_like(port, "H264", &["--start-at-keyframe"]);
    check_publisher("obs-h264.mp4", H264_MP4, start, "framesSent", Kept::Every);
}

#[test]
fn obs_like_mid_gop_start_records_from_the_first_key_frame() {
    // OBS drops what it encodes before the connection is up: the first frames are delta frames.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record("obs-midgop.webm", AV1_WEBM);
    let text = report(obs_like(rec.port, "AV1", &[]));
    let sent = json_u64(&text, "framesSent");
    wait_eos(&rec, Duration::from_secs(10));
    let decoded = decode_file(&rec.file);
    assert!(decoded.report.errors.is_empty() && decoded.report.warnings.is_empty(), "{:?}", decoded.report);
    // At most one GOP (2 s at 30 fps) before the first key frame, and a few frames at teardown.
    assert!(decoded.frames > 0 && decoded.frames as u64 + 60 + 5 >= sent, "{} frames of {sent}", decoded.frames);
}

#[test]
fn signals_stats_and_keyframe_requests_reach_the_publisher() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record("stats.webm", "w.video_0 ! fakesink name=sink async=false");
    let src = rec.pipeline.by_name("w").unwrap();
    let events = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    for signal in ["session-started", "session-ended"] {
        let events = events.clone();
        src.connect(signal, false, move |values| {
            // Strings, and session-started's structure of the pads to come and their codecs.
            let fields: Vec<String> = values[1..]
                .iter()
                .map(|v| v.get::<String>().or_else(|_| v.get::<gst::Structure>().map(|s| s.to_string())).unwrap())
                .collect();
            events.lock().unwrap().push(format!("{signal}: {}", fields.join(" | ")));
            None
        });
    }
    let child = publisher(rec.port, &["--seconds", "6", "--codec", "av1"]);
    std::thread::sleep(Duration::from_secs(3));
    // A downstream element asks for a key frame: it must go out as PLI.
    let sink_pad = rec.pipeline.by_name("sink").unwrap().static_pad("sink").unwrap();
    assert!(sink_pad.push_event(gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build()));
    std::thread::sleep(Duration::from_secs(2));
    let stats = src.property::<gst::Structure>("stats");
    let session = stats.get::<gst::Structure>("session").expect("a live session in stats");
    assert!(session.get::<u64>("packets-received").unwrap() > 100, "{session}");
    assert!(session.get::<u64>("bitrate").unwrap() > 10_000, "{session}");
    assert_eq!(session.get::<u64>("keyframe-requests").unwrap(), 1, "{session}");
    assert!(session.get::<u64>("pli-count").unwrap() >= 1, "PLI sent: {session}");
    assert_eq!(session.get::<String>("remote-address").unwrap().split(':').next(), Some("127.0.0.1"));
    report(child);
    wait_eos(&rec, Duration::from_secs(10));
    let events = events.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("session-started: ") && events[0].contains("127.0.0.1:"), "{events:?}");
    assert!(events[0].ends_with("streams, video_0=(string)AV1;"), "the pads to come: {events:?}");
    assert!(events[1].starts_with("session-ended: ") && events[1].ends_with("publisher sent DELETE"), "{events:?}");
    let stats = src.property::<gst::Structure>("stats");
    assert_eq!((stats.get::<u64>("sessions-started"), stats.get::<u64>("sessions-ended")), (Ok(1), Ok(1)));
}

#[test]
fn eos_sent_to_the_pipeline_ends_a_live_session_and_finalizes_the_file() {
    // What gst-launch-1.0 -e does on Ctrl-C while a publisher is live.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = record("eos-while-live.webm", AV1_WEBM);
    let child = publisher(rec.port, &["--seconds", "10", "--codec", "av1"]);
    std::thread::sleep(Duration::from_secs(4));
    assert!(rec.pipeline.send_event(gst::event::Eos::new()));
    let took = wait_eos(&rec, Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "EOS after {took:?}");
    let _ = child.wait_with_output();
    let decoded = decode_file(&rec.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(decoded.frames >= 30, "{} frames before the EOS", decoded.frames);
}

#[test]
fn output_encoded_records_without_a_depayloader() {
    // output=encoded: AV1 leaves as rtpav1depay-rs ! av1obufix made it, ready for a muxer.
    publish_and_check(
        "encoded-av1.webm",
        "output=encoded w.video_0 ! webmmux ! filesink location=FILE",
        &["--sink", "whipsink", "--codec", "av1"],
    );
}

#[test]
fn output_decoded_gives_raw_video() {
    publish_and_check(
        "decoded-h264.mkv",
        "output=decoded w.video_0 ! video/x-raw ! videoconvert ! x264enc speed-preset=ultrafast ! matroskamux ! filesink location=FILE",
        &["--sink", "whipsink", "--codec", "h264"],
    );
}
