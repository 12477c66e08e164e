//! whipcastwhepsink watched by a WHEP client written by others: gst-plugins-rs's `whepsrc`
//! (tests/src/bin/whep-view.rs), each viewer a process of its own.

use std::process::Command;
use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::*;

const RATE: u64 = 30;

/// A live 320x240 30 fps pattern encoded by `encoder` into `whipcastwhepsink` on `port` (stream
/// `cam`, token `t`), with Opus audio when `audio`; `more` is added to the launch line.
fn sender(port: u16, encoder: &str, audio: bool, more: &str) -> gst::Pipeline {
    init();
    let audio = if audio {
        "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! opusenc ! whep.audio_0"
    } else {
        ""
    };
    let launch = format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate={RATE}/1 ! {encoder} \
         ! tee name=t ! queue ! whep.video_0 \
         whipcastwhepsink name=whep address=127.0.0.1 port={port} stream=cam token=t {audio} {more}"
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    pipeline
}

fn viewer(port: u16, seconds: u64, codec: &str) -> Command {
    let mut command = Command::new(workspace_binary("whep-view"));
    command.args([&format!("http://127.0.0.1:{port}/whep/cam"), "--seconds", &seconds.to_string()]);
    command.args(["--token", "t", "--codec", codec]);
    command
}

/// Waits until `pipeline`'s whipcastwhepsink has sent its first frames (a viewer before that gets
/// 503: nothing to watch yet).
fn wait_for_media(pipeline: &gst::Pipeline, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http(
            port,
            "POST",
            "/whep/cam",
            &[("Authorization", "Bearer t"), ("Content-Type", "application/sdp")],
            b"v=0",
        );
        // The offer is no SDP: 400 once media is there, 503 before.
        if r.status != 503 {
            return;
        }
        assert!(Instant::now() < deadline, "no media reached whipcastwhepsink in 10 s");
        std::thread::sleep(Duration::from_millis(100));
        let _ = pipeline;
    }
}

/// Frames decoded over the watch, against the sender's rate from the first frame on.
fn assert_watched(report: &str, seconds: u64, what: &str) {
    let frames = json_u64(report, "frames");
    let first = json_u64(report, "first_frame_ms");
    assert!(frames > 0, "{what}: no frame decoded: {report}");
    let expected = (seconds * 1000).saturating_sub(first) * RATE / 1000;
    assert!(frames * 10 >= expected * 9, "{what}: {frames} frames decoded, {expected} sent since the first: {report}");
    assert_eq!((json_u64(report, "width"), json_u64(report, "height")), (320, 240), "{what}: {report}");
}

#[test]
fn whepsrc_watches_h264_with_opus_vp8_vp9_and_av1_at_the_senders_rate() {
    let cases = [
        (
            "h264",
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bframes=0 ! video/x-h264,profile=constrained-baseline",
            true,
        ),
        ("vp8", "vp8enc deadline=1 keyframe-max-dist=60", false),
        ("vp9", "vp9enc deadline=1 cpu-used=8 keyframe-max-dist=60", false),
        ("av1", "av1enc cpu-used=8 usage-profile=realtime keyframe-max-dist=60 threads=2 ! av1parse", false),
    ];
    for (codec, encoder, audio) in cases {
        let port = free_port();
        let pipeline = sender(port, encoder, audio, "");
        wait_for_media(&pipeline, port);
        let seconds = 6;
        let report = whipcast_tests::report(spawn(&mut viewer(port, seconds, codec)));
        assert_watched(&report, seconds, codec);
        if audio {
            assert!(json_u64(&report, "audio_buffers") >= (seconds - 2) * 40, "{codec}: audio: {report}");
        }
        let stats = pipeline.by_name("whep").unwrap().property::<gst::Structure>("stats");
        assert_eq!(stats.get::<u64>("viewers-started").unwrap(), 1, "{codec}: {stats}");
        // whepsrc sends DELETE as it stops.
        let deadline = Instant::now() + Duration::from_secs(3);
        while pipeline.by_name("whep").unwrap().property::<gst::Structure>("stats").get::<u64>("viewers-ended").unwrap()
            < 1
        {
            assert!(Instant::now() < deadline, "{codec}: the viewer did not end after it left");
            std::thread::sleep(Duration::from_millis(50));
        }
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn five_viewers_one_frozen_one_killed_the_others_and_the_recording_lose_nothing() {
    let port = free_port();
    let frames = 15 * RATE;
    let file = output_path("whep-recording.mkv");
    init();
    let launch = format!(
        "videotestsrc is-live=true pattern=ball num-buffers={frames} ! video/x-raw,width=320,height=240,framerate={RATE}/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bframes=0 ! video/x-h264,profile=constrained-baseline \
         ! tee name=t ! queue ! whipcastwhepsink name=whep address=127.0.0.1 port={port} stream=cam token=t \
         t. ! queue ! h264parse ! matroskamux ! filesink location={}",
        file.display()
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_for_media(&pipeline, port);
    let seconds = 12;
    let mut viewers: Vec<_> = (0..5).map(|_| spawn(&mut viewer(port, seconds, "h264"))).collect();
    // All five answered before two of them go (on a busy machine a process takes seconds to POST).
    let whep = pipeline.by_name("whep").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while whep.property::<gst::Structure>("stats").get::<u64>("viewers-started").unwrap() < 5 {
        assert!(Instant::now() < deadline, "five viewers were not answered in 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (frozen, killed) = (viewers.remove(3), viewers.remove(3));
    // One stops reading (its process stopped: its socket fills, it sends nothing), one is gone.
    send_signal(&frozen, libc::SIGSTOP);
    send_signal(&killed, libc::SIGKILL);
    for (i, v) in viewers.into_iter().enumerate() {
        let report = whipcast_tests::report(v);
        assert_watched(&report, seconds, &format!("viewer {i}"));
    }
    // Both silent viewers are found out and ended (nothing came from them for SILENCE_LIMIT).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = whep.property::<gst::Structure>("stats");
        if stats.get::<u64>("viewers-ended").unwrap() == 5 {
            break;
        }
        assert!(Instant::now() < deadline, "the frozen and the killed viewer were not ended: {stats}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut frozen = frozen;
    send_signal(&frozen, libc::SIGKILL);
    let _ = frozen.wait();
    let mut killed = killed;
    let _ = killed.wait();
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(30));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let decoded = decode_file(&file);
    assert_eq!(decoded.frames as u64, frames, "the recording beside the viewers: {:?}", decoded.report.errors);
}

#[test]
fn the_endpoint_answers_with_clear_statuses() {
    let port = free_port();
    let sdp = [("Authorization", "Bearer t"), ("Content-Type", "application/sdp")];
    init();
    // Nothing flows yet: a viewer is told to come back.
    let idle = gst::parse::launch(&format!(
        "appsrc caps=video/x-vp8 format=time ! whep.video_0 whipcastwhepsink name=whep address=127.0.0.1 port={port} stream=cam token=t max-viewers=1"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    idle.set_state(gst::State::Playing).unwrap();
    let r = http(port, "POST", "/whep/cam", &sdp, b"v=0\r\n");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("2")), "{}", r.body);
    assert!(r.body.contains("nothing to watch yet"), "{}", r.body);
    assert_eq!(http(port, "POST", "/whep/cam", &[("Content-Type", "application/sdp")], b"v=0").status, 401);
    assert_eq!(http(port, "POST", "/whep/other", &sdp, b"v=0").status, 404);
    assert_eq!(http(port, "POST", "/whip/cam", &sdp, b"v=0").status, 404, "no WHIP stream of that name");
    let r = http(port, "GET", "/whep/cam", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("OPTIONS, POST")));
    let r = http(port, "OPTIONS", "/whep/cam", &[], b"");
    assert_eq!((r.status, r.header("accept-post")), (204, Some("application/sdp")));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(http(port, "DELETE", "/whep/cam/0123", &[("Authorization", "Bearer t")], b"").status, 404);
    idle.set_state(gst::State::Null).unwrap();

    // With media: the second viewer past max-viewers=1 gets 503; DELETE ends the first.
    let pipeline = sender(port, "vp8enc deadline=1 keyframe-max-dist=30", false, "max-viewers=1");
    wait_for_media(&pipeline, port);
    let r = http(port, "POST", "/whep/cam", &sdp, b"v=0\r\n");
    assert_eq!(r.status, 400, "not an SDP offer: {}", r.body);
    let first = spawn(&mut viewer(port, 4, "vp8"));
    let whep = pipeline.by_name("whep").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while whep.property::<gst::Structure>("stats").get::<u64>("viewers-started").unwrap() < 1 {
        assert!(Instant::now() < deadline, "the first viewer was not answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = http(port, "POST", "/whep/cam", &sdp, b"v=0\r\n");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("10")), "past max-viewers=1: {}", r.body);
    assert!(r.body.contains("max-viewers"), "{}", r.body);
    let report = whipcast_tests::report(first);
    assert_watched(&report, 4, "vp8");
    pipeline.set_state(gst::State::Null).unwrap();
}
