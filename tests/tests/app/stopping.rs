//! How recordings end: Ctrl-C and SIGTERM finalize, SIGKILL leaves a file that decodes, a session
//! without media leaves none, a full disk ends only its recording.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use whipcast_tests::whipcast::{Server, TOKEN, obs_like, obs_like_with};
use whipcast_tests::*;

use crate::support::{SERIAL, assert_holds_frames, check, files_with, publish};

/// CLOCK_MONOTONIC in ms, the clock of the publisher's `frameTimesMs`.
fn monotonic_ms() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 * 1e3 + now.tv_nsec as f64 / 1e6
}

/// Video frames the publisher's report says it sent before `ms` (CLOCK_MONOTONIC).
fn frames_sent_before(report: &str, ms: f64) -> u64 {
    let list = report.split("\"frameTimesMs\": [").nth(1).and_then(|rest| rest.split(']').next());
    let list = list.unwrap_or_else(|| panic!("no frameTimesMs in {report}"));
    list.split(',').filter_map(|t| t.trim().parse::<f64>().ok()).filter(|&t| t <= ms).count() as u64
}

#[test]
fn ctrl_c_finalizes_the_recording_in_progress() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-ctrl-c", &["--no-facemark"]);
    let publisher = publish(&server.url(), &["--codec", "av1", "--seconds", "20"]);
    server.wait_for("session ", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(5));
    server.interrupt();
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(20));
    let _ = publisher.wait_with_output();
    assert!(output.contains("stopping: finalizing 1 recording"), "{output}");
    let webm = files_with(&folder, "webm");
    assert_eq!(webm.len(), 1, "{output}");
    let checked = check(&webm[0]);
    // About 5 s of 30 fps were recorded before Ctrl-C.
    let frames = json_u64(&checked, "video_frames");
    assert!((90..=300).contains(&frames), "{checked}");
}

/// whipcast killed with SIGKILL at a moment that changes from run to run: the file on disk decodes
/// with no error (ffmpeg) and holds every frame sent up to 1.5 s before the kill.
fn killed_mid_session(codec: &str, extension: &str, publisher_args: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start(&format!("app-kill-{extension}"), &["--no-facemark"]);
    let publisher = obs_like_with(&server.url(), codec, 14, publisher_args);
    server.wait_for("session ", Duration::from_secs(20));
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let delay = Duration::from_millis(3000 + u64::from(nanos) % 6000);
    eprintln!("killing whipcast {delay:?} into the session");
    std::thread::sleep(delay);
    let killed_at = monotonic_ms();
    let folder = server.kill();
    let sent = String::from_utf8_lossy(&publisher.wait_with_output().unwrap().stdout).into_owned();
    let due = frames_sent_before(&sent, killed_at - 1500.0);
    assert!(due >= 30, "the publisher sent {due} frames 1.5 s before the kill: {sent}");
    let files = files_with(&folder, extension);
    assert_eq!(files.len(), 1, "{files:?}");
    let decoded = ffmpeg_decode(&files[0]);
    assert!(decoded.errors.is_empty(), "killed after {delay:?}: {:?}", decoded.errors);
    assert!(
        decoded.video_frames >= due,
        "killed after {delay:?}: {} frames decode, {due} were sent 1.5 s before the kill",
        decoded.video_frames
    );
}

#[test]
fn sigkill_leaves_an_av1_webm_that_decodes() {
    killed_mid_session("AV1", "webm", &[]);
}

#[test]
fn sigkill_leaves_an_h264_mp4_that_decodes() {
    killed_mid_session("H264", "mp4", &[]);
}

#[test]
fn sigkill_with_audio_negotiated_but_never_sent_leaves_an_mp4_that_decodes() {
    // Before tracks.rs, mp4mux waited for the silent audio: nothing reached the disk until the
    // end, and the moov had an audio track without a sample description.
    killed_mid_session("H264", "mp4", &["--silent-audio"]);
}

#[test]
fn sigterm_finalizes_like_ctrl_c() {
    // What systemd's stop sends.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-sigterm", &["--no-facemark"]);
    let publisher = obs_like(&server.url(), "H264", 20);
    server.wait_for("session ", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    server.signal(libc::SIGTERM);
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(20));
    let _ = publisher.wait_with_output();
    assert!(output.contains("stopping: finalizing 1 recording"), "{output}");
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let decoded = ffmpeg_decode(&mp4[0]);
    assert!(decoded.errors.is_empty() && decoded.video_frames >= 60, "{decoded:?}");
    // Finalized, not only fragments: the duration and the fragment index are there.
    assert!(discovered_duration(&discover(&mp4[0])).is_some_and(|d| d > 2.0), "{}", discover(&mp4[0]));
}

#[test]
fn a_session_without_media_leaves_no_file() {
    // OBS giving up after the answer: a POST, then nothing.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-no-media", &["--no-facemark", "--timeout", "2", "--sessions", "1"]);
    let offer = std::fs::read(data_path("obs_av1.offer.sdp")).unwrap();
    let auth = format!("Bearer {TOKEN}");
    let created =
        http(server.port, "POST", "/whip/s", &[("Content-Type", "application/sdp"), ("Authorization", &auth)], &offer);
    assert_eq!(created.status, 201, "{}", created.body);
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    assert!(output.contains("nothing recorded") && output.contains("no media arrived"), "{output}");
    let left: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A filesystem of `bytes` mounted for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, bytes: u64) -> Result<SmallDisk, String> {
        let dir = output_path(name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_ends_that_recording_only_and_the_file_stays_valid() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let disk = match SmallDisk::mount("app-full-disk", 512 * 1024) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs here ({why})");
            return;
        }
    };
    let recordings = disk.0.join("recordings");
    let server = Server::start_in(recordings.clone(), &["--no-facemark"]);
    // The OBS-like publisher's H.264 is about 190 KB/s: the 512 KiB disk is full within seconds.
    let first = obs_like(&server.url(), "H264", 8);
    server.wait_for("failed: No space left", Duration::from_secs(20));
    let output = server.output.lock().unwrap().clone();
    let failed = files_with(&recordings, "mp4");
    assert_eq!(failed.len(), 1, "{output}");
    let name = failed[0].to_string_lossy().into_owned();
    assert!(
        output.lines().any(|l| l.contains("failed: No space left") && l.contains(&*name)),
        "the error names the file: {output}"
    );
    assert_eq!(output.matches("failed: ").count(), 1, "said once: {output}");
    // What was written stays valid.
    let decoded = ffmpeg_decode(&failed[0]);
    assert!(decoded.errors.is_empty() && decoded.video_frames > 0, "{decoded:?}");
    let first = report(first);
    assert!(json_u64(&first, "framesSent") > decoded.video_frames, "the disk filled up before the end");
    // Space back: the next session records again, and the server never stopped.
    std::fs::remove_file(&failed[0]).unwrap();
    let second = report(obs_like(&server.url(), "H264", 2));
    server.wait_for("recorded ", Duration::from_secs(20));
    server.interrupt();
    let output = server.wait_exit(Duration::from_secs(20));
    let again = files_with(&recordings, "mp4");
    assert_eq!(again.len(), 1, "{output}");
    let decoded = ffmpeg_decode(&again[0]);
    assert!(decoded.errors.is_empty(), "{decoded:?}");
    assert_holds_frames(&format!("{{\"video_frames\":{}}}", decoded.video_frames), json_u64(&second, "framesSent"));
}
