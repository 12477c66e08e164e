//! Simulcast publishers: the largest layer recorded, facemark on a smaller one, and the
//! recording following the layers that send.

use std::time::Duration;

use whipcast_tests::whipcast::{Server, obs_like_with};
use whipcast_tests::*;

use crate::support::{SERIAL, assert_holds_frames, check, files_with, snapshots};

#[test]
fn obs_simulcast_is_recorded_at_full_size_and_marked_on_a_smaller_layer() {
    // OBS 32.1+ with three simulcast layers (1280x720, 852x480, 426x240): the server accepts all
    // three (OBS's own check), records the largest and runs facemark on the smallest layer at
    // least 360 pixels tall (--analysis-height, default 360): 852x480.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-simulcast", &["--sessions", "1", "--snapshot-every", "30"]);
    let text = report(obs_like_with(&server.url(), "H264", 6, &["--layers", "3", "--layer-order", "2,1,0"]));
    assert_eq!(json_u64(&text, "layersAccepted"), 3, "{text}");
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let checked = check(&mp4[0]);
    assert_eq!((json_u64(&checked, "width"), json_u64(&checked, "height")), (1280, 720), "{checked}");
    assert_holds_frames(&checked, json_u64(&text, "framesSent"));
    let folder = mp4[0].with_extension("");
    let shots = snapshots(&folder);
    assert!(shots.len() >= 3, "{shots:?}: {output}");
    let shot = decode_file(&folder.join(&shots[0]));
    let caps = shot.caps.expect("the snapshot decodes");
    let s = caps.structure(0).unwrap();
    assert_eq!((s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap()), (852, 480), "{output}");
}

/// A simulcast layer that starts late and stops early, as a browser's upper layer does with its
/// bandwidth estimate: the recording starts on 852x480, moves to 1280x720 at that layer's first
/// key frame (2 s) and back to 852x480 at 852x480's first key frame after the larger one has
/// been silent for 1.5 s (6 s: the OBS-like publisher ignores the key-frame request, as OBS
/// does). The file decodes whole through both changes, in ffmpeg and GStreamer.
fn simulcast_follows_the_layers_that_send(codec: &str, extension: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(&format!("app-late-layer-{codec}"), &["--sessions", "1"]);
    let layers = ["--layers", "3", "--layer-from", "0=1.9", "--layer-until", "0=4"];
    let text = report(obs_like_with(&server.url(), codec, 8, &layers));
    assert_eq!(json_u64(&text, "layersAccepted"), 3, "{text}");
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    let files = files_with(&folder, extension);
    assert_eq!(files.len(), 1, "{output}");
    check(&files[0]);
    let ffmpeg = ffmpeg_decode(&files[0]);
    assert!(ffmpeg.errors.is_empty(), "{:?}", ffmpeg.errors);
    let (runs, decoding) = frames_by_size(&files[0]);
    assert!(decoding.errors.is_empty(), "{:?}", decoding.errors);
    assert_eq!(ffmpeg.video_frames, runs.iter().map(|(_, n)| *n as u64).sum::<u64>(), "{runs:?}");
    let sizes: Vec<(i32, i32)> = runs.iter().map(|(size, _)| *size).collect();
    assert_eq!(sizes, [(852, 480), (1280, 720), (852, 480)], "{runs:?}\n{text}");
    let sent = json_u64_list(&text, "layerFramesSent");
    assert!(runs[1].1 as u64 * 100 >= sent[0] * 95, "{} of the {} frames of layer 0: {runs:?}", runs[1].1, sent[0]);
    // 852x480 before 2 s and from 6 s to 8 s: 60 frames each, less what the joining took.
    assert!(runs[0].1 >= 45 && runs[2].1 >= 45, "{runs:?}");
}

#[test]
fn obs_simulcast_h264_follows_a_layer_that_starts_late_and_stops_early() {
    simulcast_follows_the_layers_that_send("H264", "mp4");
}

#[test]
fn obs_simulcast_av1_follows_a_layer_that_starts_late_and_stops_early() {
    simulcast_follows_the_layers_that_send("AV1", "webm");
}
