//! A busy machine: every frame a publisher (whipsink, Chromium, OBS-like) sends is recorded.

use std::process::Command;
use std::time::Duration;

use whipcast_tests::relay::{Loss, Nack, WhipRelay};
use whipcast_tests::whipcast::{Server, TOKEN, obs_like};
use whipcast_tests::*;

use crate::support::{SERIAL, files_with, publish};

/// Who publishes in a load test.
enum LoadPublisher {
    Whipsink,
    Chromium,
    ObsLike,
}

/// With every core busy (a spinning thread per core), `whipcast serve` (face marking on) records
/// every H.264 frame the publisher put on the wire from its first key frame on, the last ones too
/// (the session drains after the DELETE), counted by a relay between them (`relay.rs`, dropping
/// nothing), and the file decodes cleanly.
fn records_under_load(who: LoadPublisher) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-load", &["--sessions", "1"]);
    let relay = WhipRelay::start(server.port, Loss::Nothing, Nack::Repairs, 0);
    let url = relay.url("/whip/s");
    let hog = CpuHog::start();
    let text = report(match who {
        LoadPublisher::Whipsink => publish(&url, &["--codec", "h264", "--audio", "--seconds", "8"]),
        LoadPublisher::ObsLike => obs_like(&url, "H264", 8),
        LoadPublisher::Chromium => spawn(Command::new("node").arg(peers().join("chromium/publish.mjs")).args([
            "--url",
            &url,
            "--codec",
            "H264",
            "--seconds",
            "8",
            "--token",
            TOKEN,
            "--audio",
        ])),
    });
    drop(hog);
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));

    let frames = relay.frames_sent();
    // The first key frame on the wire: frames before it cannot be decoded by anyone.
    let first_key = match who {
        LoadPublisher::Whipsink => {
            let keys = json_u64_list(&text, "key_timestamps");
            frames.iter().position(|f| keys.contains(&u64::from(f.timestamp)))
        }
        LoadPublisher::ObsLike => json_u64_list(&text, "keyFrameIndexes").first().map(|&i| i as usize),
        // Chromium's encoder starts with a key frame once connected.
        LoadPublisher::Chromium => Some(0),
    };
    let sent = frames.len() - first_key.unwrap_or_else(|| panic!("no key frame sent: {text}"));
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let decoded = ffmpeg_decode(&mp4[0]);
    let mut context = format!("{} frames recorded of {sent} sent from the first key frame", decoded.video_frames);
    if decoded.video_frames != sent as u64 {
        // Where, by time (the file's times come from the receiver's clock: a guide, not a proof).
        let from_key: Vec<u32> = frames[frames.len() - sent..].iter().map(|f| f.timestamp).collect();
        context += &format!(" (missing: {:?})", missing_frames(&from_key, &video_pts(&mp4[0])));
    }
    context += &format!(": {text}");
    eprintln!("{context}");
    assert!(decoded.errors.is_empty(), "{context}: {:?}", decoded.errors);
    assert!(sent >= 150 && decoded.video_frames == sent as u64, "{context}");
}

#[test]
fn whipsink_is_recorded_whole_on_a_busy_machine() {
    records_under_load(LoadPublisher::Whipsink);
}

#[test]
fn chromium_is_recorded_whole_on_a_busy_machine() {
    records_under_load(LoadPublisher::Chromium);
}

#[test]
fn obs_like_is_recorded_whole_on_a_busy_machine() {
    records_under_load(LoadPublisher::ObsLike);
}
