//! What comes out of `whipcast serve` for viewers (WHEP): the source view (/whep/<stream>/source)
//! and the annotated one (/whep/<stream>), watched by headless Chromium through the watch page and
//! by gst-plugins-rs's whepsrc, while real publishers (OBS-like, Chromium) publish and the
//! recording goes on whole.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use whipcast_tests::whipcast::{Server, TOKEN, obs_like};
use whipcast_tests::*;

/// One server at a time: the machine has 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// The publishers' frame rate.
const RATE: f64 = 30.0;

/// Headless Chromium on the watch page of stream `s`, `view` (source or annotated), for `seconds`.
fn chromium_watches(server: &Server, view: &str, seconds: u32) -> String {
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test does)");
    let url = format!("http://127.0.0.1:{}/watch/s?view={view}&token={TOKEN}", server.port);
    let out = Command::new("node")
        .arg(peers().join("chromium/watch.mjs"))
        .args([&url, "--seconds", &seconds.to_string()])
        .stderr(Stdio::null())
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("\"ok\":true"), "Chromium did not watch {view}: {text}");
    text
}

/// whipcast for one session, recording into a fresh folder `name`; its views log each viewer's
/// end with the frames sent and skipped (GST_DEBUG), so a viewer that fell behind says whether
/// whipcast skipped frames for it or the viewer did not keep up.
fn serve(name: &str) -> Server {
    Server::start_with_env(name, &["--sessions", "1"], &[("GST_DEBUG".into(), "whipcastwhepsink:4".into())])
}

/// gst-plugins-rs's whepsrc on `path` (`/whep/s` or `/whep/s/source`) for `seconds`.
fn whepsrc_watches(server: &Server, path: &str, seconds: u32) -> Child {
    let url = format!("http://127.0.0.1:{}{path}", server.port);
    spawn(Command::new(workspace_binary("whep-view")).args([&url, "--seconds", &seconds.to_string(), "--token", TOKEN]))
}

/// The Chromium viewer's rate (frames decoded per second, from 2 s after its first frame) is at
/// least 90 % of the publisher's, at the publisher's size.
fn assert_chromium_kept_up(report: &str, size: (u64, u64), view: &str) {
    let rate: f64 = report.split("\"rate\":").nth(1).and_then(|r| r.split([',', '}']).next()).unwrap().parse().unwrap();
    assert!(rate >= 0.9 * RATE, "{view}: {rate} frames/s decoded: {report}");
    assert_eq!((json_u64(report, "width"), json_u64(report, "height")), size, "{view}: {report}");
    assert!(json_u64(report, "audioSamples") > 48_000, "{view}: no audio: {report}");
}

/// whepsrc decoded at least 90 % of the publisher's frames since its first, at its size.
fn assert_whepsrc_kept_up(report: &str, seconds: u32, size: (u64, u64), view: &str) {
    let (frames, first) = (json_u64(report, "frames"), json_u64(report, "first_frame_ms"));
    let expected = (f64::from(seconds) - first as f64 / 1000.0) * RATE;
    assert!(frames as f64 >= 0.9 * expected, "{view}: {frames} frames, {expected:.0} sent since the first: {report}");
    assert_eq!((json_u64(report, "width"), json_u64(report, "height")), size, "{view}: {report}");
}

fn metric(server: &Server, name: &str) -> u64 {
    let r = http(server.port, "GET", "/metrics", &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
    let line = r.body.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{}", r.body));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn recording(folder: &Path, extension: &str) -> String {
    let files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let out = Command::new(workspace_binary("whipcast")).arg("check").arg(&files[0]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("\"ok\":true"), "{text}");
    text
}

#[test]
fn an_obs_publisher_is_watched_on_both_views_by_chromium_and_whepsrc_and_recorded_whole() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve("app-whep-obs");
    // Publishing until the viewers are done (SIGINT: OBS's Stop Streaming): Chromium starting on
    // a busy machine can take 20 s, which a fixed length would have to guess.
    let mut publisher = obs_like(&server.url(), "h264", 300);
    server.wait_for_while("session ", &mut publisher);
    // The OBS-like publisher's clip is 640x360.
    let size = (640, 360);
    let source = chromium_watches(&server, "source", 8);
    assert_chromium_kept_up(&source, size, "source");
    let annotated = chromium_watches(&server, "annotated", 8);
    assert_chromium_kept_up(&annotated, size, "annotated");
    for (path, view) in [("/whep/s", "annotated (whepsrc)"), ("/whep/s/source", "source (whepsrc)")] {
        let viewer = whepsrc_watches(&server, path, 6);
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(metric(&server, "whipcast_viewers_active"), 1, "{view}: whepsrc watches");
        assert_whepsrc_kept_up(&report(viewer), 6, size, view);
    }
    send_signal(&publisher, libc::SIGINT);
    let sent = json_u64(&report(publisher), "framesSent");
    let folder = server.folder.clone();
    server.wait_exit(Duration::from_secs(30));
    let checked = recording(&folder, "mp4");
    let frames = json_u64(&checked, "video_frames");
    assert!(frames * 100 >= sent * 95, "the recording beside the viewers: {frames} of {sent} frames: {checked}");
}

#[test]
fn a_chromium_publisher_is_watched_in_chromium_on_both_views_and_recorded_whole() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve("app-whep-chromium");
    let mut publisher = Command::new("node")
        .arg(peers().join("chromium/publish.mjs"))
        .args(["--url", &server.url(), "--codec", "VP8", "--seconds", "34", "--token", TOKEN, "--audio"])
        .args(["--size", "640x360"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    server.wait_for_while("session ", &mut publisher);
    // Both views at once: one after the other, two slow browser starts could outlast the
    // publisher's 34 s.
    let (source, annotated) = std::thread::scope(|s| {
        let source = s.spawn(|| chromium_watches(&server, "source", 8));
        let annotated = chromium_watches(&server, "annotated", 8);
        (source.join().unwrap(), annotated)
    });
    let result = report(publisher);
    // What the publisher sent last (a browser may lower its size on a busy machine).
    let size = (json_u64(&result, "frameWidth"), json_u64(&result, "frameHeight"));
    assert_chromium_kept_up(&source, size, "source");
    assert_chromium_kept_up(&annotated, size, "annotated");
    let folder = server.folder.clone();
    server.wait_exit(Duration::from_secs(30));
    let checked = recording(&folder, "webm");
    let frames = json_u64(&checked, "video_frames");
    let sent = json_u64(&result, "framesSent");
    assert!(frames * 100 >= sent * 95, "the recording beside the viewers: {frames} of {sent} frames: {checked}");
}
