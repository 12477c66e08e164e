//! Recording session after session, each in its container, whatever the publisher sends (audio
//! or not, video from mid-GOP), and `make demo`'s script.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use whipcast_tests::whipcast::{Server, obs_like_with};
use whipcast_tests::*;

use crate::support::{SERIAL, assert_holds_frames, check, files_with, publish, snapshots};

#[test]
fn records_session_after_session_each_in_its_container() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-sessions", &["--sessions", "2", "--snapshot-every", "30"]);
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let av1 = report(publish(
        &server.url(),
        &["--codec", "av1", "--audio", "--seconds", "6", "--image", image.to_str().unwrap()],
    ));
    server.wait_for("recorded ", Duration::from_secs(20));
    let h264 = report(publish(&server.url(), &["--codec", "h264", "--audio", "--seconds", "6"]));
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));

    let webm = files_with(&folder, "webm");
    let mp4 = files_with(&folder, "mp4");
    assert_eq!((webm.len(), mp4.len()), (1, 1), "{output}");
    for file in webm.iter().chain(&mp4) {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("s-") && name.contains('T') && name.contains("Z."), "{name}");
    }
    let checked = check(&webm[0]);
    assert!(checked.contains("video/x-av1") && checked.contains("audio/x-opus"), "{checked}");
    assert_holds_frames(&checked, json_u64(&av1, "frames_sent"));
    assert!(json_u64(&checked, "audio_samples") > 48000 * 4, "{checked}");
    let checked = check(&mp4[0]);
    assert!(checked.contains("video/x-h264") && checked.contains("audio/x-opus"), "{checked}");
    assert_holds_frames(&checked, json_u64(&h264, "frames_sent"));
    // Both play in a browser (GStreamer 1.22's webmmux alone writes WebM with Opus that Chromium
    // refuses: fragmentsync sets the key flag of the audio blocks).
    for (file, played) in webm.iter().chain(&mp4).zip(chromium_plays([webm[0].as_path(), mp4[0].as_path()].into_iter()))
    {
        let frames = json_u64(&check(file), "video_frames");
        assert_eq!(played, frames, "{}: frames Chromium played, of those in the file", file.display());
    }

    // The AV1 session's snapshots: every 30th frame, marked (facemark found the face).
    let shots = snapshots(&webm[0].with_extension(""));
    assert!(shots.len() >= 4 && shots[0] == "z30.jpg", "{shots:?}");
    assert!(output.contains("facemark after"), "{output}");
}

#[test]
fn make_demo_script_records_and_reports() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let folder = output_path("demo");
    let _ = std::fs::remove_dir_all(&folder);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/demo.sh"))
        .env("WHIPCAST_PROFILE", "debug")
        .env("DEMO_OUT", &folder)
        .env("DEMO_PORT", free_port().to_string())
        .env("DEMO_SECONDS", "6")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{text}");
    // One recording per publisher (GStreamer's whipsink, and Chromium: make test installs it).
    let webm = files_with(&folder, "webm");
    assert_eq!(webm.len(), 2, "{text}");
    let sent: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("frames_sent") || l.contains("framesSent"))
        .map(|l| if l.contains("frames_sent") { json_u64(l, "frames_sent") } else { json_u64(l, "framesSent") })
        .collect();
    assert_eq!(sent.len(), 2, "{text}");
    for (file, sent) in webm.iter().zip(sent) {
        let line = text
            .lines()
            .find(|l| l.contains("\"ok\":true") && l.contains(&*file.to_string_lossy()))
            .unwrap_or_else(|| panic!("no check of {}: {text}", file.display()));
        assert_holds_frames(line, sent);
    }
    assert!(text.contains("snapshots in "), "{text}");
    assert!(!snapshots(&webm[0].with_extension("")).is_empty(), "the face snapshots: {text}");
}

/// OBS drops what it encoded before the connection was up, so its video starts mid-GOP: the Opus
/// packets come at once, the first video frame at the next key frame (here 1.8 s later, past the
/// 1 s that a stream sending nothing at all is given). The video's RTP is arriving, so the
/// recording waits for its first frame and the file has the video from its first key frame.
#[test]
fn obs_starting_mid_gop_is_recorded_with_its_video() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-mid-gop", &["--sessions", "1"]);
    let text = report(obs_like_with(&server.url(), "H264", 5, &["--first-key-after", "1.8"]));
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    assert!(!output.contains("is not recorded"), "{output}");
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let checked = check(&mp4[0]);
    let keys = json_u64_list(&text, "keyFrameIndexes");
    assert_eq!(keys.first(), Some(&54), "the first key frame 1.8 s in: {text}");
    assert_holds_frames(&checked, json_u64(&text, "framesSent") - keys[0]);
    assert!(checked.contains("audio/x-opus"), "{checked}");
}

#[test]
fn audio_negotiated_but_never_sent_still_gives_a_file_that_decodes() {
    // The publisher offers Opus and sends none: the muxer must neither wait for it (it held
    // everything until the end, and lost what its queue could not hold) nor write a track without
    // a sample description (ffmpeg refuses those: "invalid STSD entries 0"). Longer than the
    // recording's 3 s queue.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-silent-audio", &["--sessions", "1", "--no-facemark"]);
    let publisher = obs_like_with(&server.url(), "H264", 6, &["--silent-audio"]);
    let text = report(publisher);
    assert_eq!(json_u64(&text, "audioPacketsSent"), 0, "{text}");
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let decoded = ffmpeg_decode(&mp4[0]);
    let sent = json_u64(&text, "framesSent");
    assert!(decoded.errors.is_empty() && decoded.video_frames == sent, "{sent} sent: {decoded:?}\n{output}");
    let checked = check(&mp4[0]);
    assert_eq!(json_u64(&checked, "video_frames"), sent, "{checked}");
}
