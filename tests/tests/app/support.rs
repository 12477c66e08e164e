//! What the app tests share: one server at a time, the publishers they start and the checks of
//! the recordings they leave.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use whipcast_tests::whipcast::{Server, TOKEN};
use whipcast_tests::*;

/// One server and one publisher at a time: the machine has 2 cores.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn publish(url: &str, args: &[&str]) -> Child {
    whip_publish_command(url)
        .args(["--token", TOKEN])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("publisher starts")
}

/// `whipcast check`'s JSON line for a file.
pub fn check(file: &Path) -> String {
    let out = Command::new(workspace_binary("whipcast")).arg("check").arg(file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("\"ok\":true"), "{} does not decode: {text}", file.display());
    text
}

pub fn files_with(folder: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

pub fn snapshots(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort_by_key(|n| n.trim_start_matches('z').trim_end_matches(".jpg").parse::<u64>().unwrap_or(0));
    names
}

/// At least 95% of the frames sent are in the file.
pub fn assert_holds_frames(checked: &str, sent: u64) {
    let frames = json_u64(checked, "video_frames");
    assert!(sent > 0 && frames * 100 >= sent * 95, "{frames} frames recorded of {sent} sent: {checked}");
}

/// The astronaut photo (a face) sliding across the frame, H.264 with Opus, for `seconds`.
pub fn publish_a_face(server: &Server, seconds: u32) -> Child {
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    publish(
        &server.url(),
        &["--codec", "h264", "--audio", "--seconds", &seconds.to_string(), "--image", image.to_str().unwrap()],
    )
}
