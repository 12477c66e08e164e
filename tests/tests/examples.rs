//! The embedding examples in `examples/`, run as a user runs them: the Rust app `record-whip`
//! (the plugins linked in and registered statically, no GST_PLUGIN_PATH) and the Python snippet
//! `record_whip.py` (PyGObject; the plugins found through GST_PLUGIN_PATH) each serve WHIP on
//! loopback while gst-plugins-rs `whipsink` publishes AV1 and Opus from another process. They must
//! report the session, finish the file when the publisher leaves or on Ctrl-C, and the recording
//! must decode to at least 95% of the frames sent.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use whipcast_tests::*;

/// One publisher at a time: two AV1 encoders at once would starve this 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn rust_example() -> Command {
    Command::new(workspace_binary("record-whip"))
}

fn python_example() -> Command {
    let python = Path::new("/usr/bin/python3");
    let gi = Command::new(python).args(["-c", "import gi; gi.require_version('Gst', '1.0')"]).status();
    assert!(
        gi.is_ok_and(|s| s.success()),
        "Debian's python3 with PyGObject is needed: apt-get install python3-gi gir1.2-gst-plugins-base-1.0 (make test-deps does)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/record_whip.py");
    let mut command = Command::new(python);
    command.arg(script).env("GST_PLUGIN_PATH", build_dir());
    command
}

/// A running example: its process and the lines it prints.
struct Example {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    port: u16,
    file: PathBuf,
}

impl Example {
    fn start(mut command: Command, name: &str) -> Self {
        let (port, file) = (free_port(), output_path(name));
        let mut child = command
            .args(["--address", "127.0.0.1", "--port", &port.to_string(), "--timeout", "3", "--output"])
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut example = Self { child, lines, seen: Vec::new(), port, file };
        example.expect_line(&format!("publish to http://127.0.0.1:{port}/whip/live"), Duration::from_secs(20));
        example
    }

    /// Waits for a printed line containing `text`; returns it.
    fn expect_line(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no line with {text:?} within {within:?}: {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the example exited without printing {text:?}: {:?}", self.seen)
                }
            }
        }
    }

    fn publish(&self, seconds: u32) -> Child {
        let url = format!("http://127.0.0.1:{}/whip/live", self.port);
        let seconds = seconds.to_string();
        spawn(whip_publish_command(&url).args(["--seconds", &seconds, "--codec", "av1", "--audio"]))
    }

    /// Waits for the example to exit by itself; it must succeed.
    fn wait_exit(&mut self, within: Duration) {
        let status = exit_within(&mut self.child, within);
        self.seen.extend(self.lines.iter());
        let Some(status) = status else { panic!("the example did not exit within {within:?}: {:?}", self.seen) };
        assert!(status.success(), "the example failed ({status}): {:?}", self.seen);
    }

    /// The session it reported: `id <32 hex digits>, remote 127.0.0.1:PORT`.
    fn check_session_line(&mut self) {
        let line = self.expect_line("session started: ", Duration::from_secs(20));
        let id = line.split("id ").nth(1).and_then(|s| s.split(',').next()).unwrap_or_default();
        assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
        assert!(
            line.contains(", remote 127.0.0.1:")
                && line.contains(", user agent \"")
                && line.contains(", streams ")
                && line.contains("video_0=AV1")
                && line.contains("audio_0=OPUS"),
            "{line}"
        );
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The publisher sends for 6 s and leaves (DELETE): the example finishes the file and exits.
fn records_until_the_publisher_leaves(command: Command, name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut example = Example::start(command, name);
    let text = report(example.publish(6));
    let sent = json_u64(&text, "frames_sent");
    assert!(sent >= 6 * 15, "the publisher sent only {sent} frames: {text}");
    example.check_session_line();
    example.expect_line("recording video_0", Duration::from_secs(5));
    example.expect_line("recording audio_0", Duration::from_secs(5));
    example.wait_exit(Duration::from_secs(15));
    example.expect_line("is complete", Duration::ZERO);
    let decoded = decode_file(&example.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(decoded.frames as u64 * 100 >= sent * 95, "{} frames decoded of {sent} sent", decoded.frames);
    let streams = discover(&example.file);
    let has = |kind: &str, codec: &str| {
        streams.lines().any(|l| l.trim_start().starts_with(&format!("{kind} #")) && l.ends_with(&format!(": {codec}")))
    };
    assert!(has("video", "AV1") && has("audio", "Opus"), "{streams}");
}

/// Ctrl-C while the publisher is still sending: the file is finished (duration written).
fn finishes_the_file_on_ctrl_c(command: Command, name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut example = Example::start(command, name);
    let mut publisher = example.publish(30);
    example.check_session_line();
    std::thread::sleep(Duration::from_secs(5));
    // SAFETY: kill(2) on the example's own pid, a child this test started and has not reaped.
    send_signal(&example.child, libc::SIGINT);
    example.wait_exit(Duration::from_secs(15));
    let _ = publisher.kill();
    let _ = publisher.wait();
    example.expect_line("interrupted, finishing", Duration::ZERO);
    example.expect_line("is complete", Duration::ZERO);
    let decoded = decode_file(&example.file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    // About 5 s at 30 fps were recorded; a finished WebM knows its duration.
    assert!(decoded.frames >= 90, "{} frames in the finished file", decoded.frames);
    let duration = discovered_duration(&discover(&example.file)).expect("a duration in the finished file");
    assert!(duration >= 3.0, "duration {duration} s");
}

#[test]
fn rust_example_records_until_the_publisher_leaves() {
    records_until_the_publisher_leaves(rust_example(), "example-rust.webm");
}

#[test]
fn rust_example_finishes_the_file_on_ctrl_c() {
    finishes_the_file_on_ctrl_c(rust_example(), "example-rust-ctrl-c.webm");
}

#[test]
fn python_example_records_until_the_publisher_leaves() {
    records_until_the_publisher_leaves(python_example(), "example-python.webm");
}

#[test]
fn python_example_finishes_the_file_on_ctrl_c() {
    finishes_the_file_on_ctrl_c(python_example(), "example-python-ctrl-c.webm");
}

#[test]
fn interrupted_before_any_publisher_both_exit_at_once() {
    for (command, name) in [(rust_example(), "idle-rust.webm"), (python_example(), "idle-python.webm")] {
        let mut example = Example::start(command, name);
        // SAFETY: as above, the example's own pid.
        send_signal(&example.child, libc::SIGINT);
        example.wait_exit(Duration::from_secs(10));
        example.expect_line("nothing recorded", Duration::ZERO);
    }
}

/// `face_landmarks.py` reads facemark's messages from Python (PyGObject with GStreamer's
/// overrides, python3-gst-1.0, for the GstValueArray lists): a second of the astronaut photo gives
/// one line per frame, each with its face where the photo has it and 478 landmarks inside it.
#[test]
fn python_reads_the_faces_and_landmarks_of_each_frame() {
    let clip = output_path("python-face.mp4");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc", &format!("location={}", image.display()), "!", "pngdec", "!", "videoconvert"])
        .args(["!", "imagefreeze", "num-buffers=30", "!", "video/x-raw,framerate=30/1", "!", "videoconvert"])
        .args(["!", "x264enc", "speed-preset=ultrafast", "!", "mp4mux"])
        .args(["!", "filesink", &format!("location={}", clip.display())])
        .status()
        .unwrap();
    assert!(status.success());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/face_landmarks.py");
    let out =
        Command::new("/usr/bin/python3").arg(script).arg(&clip).env("GST_PLUGIN_PATH", build_dir()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{text}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 30, "{text:.500}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("{{\"pts\":{},\"width\":512,\"height\":512,", i as u64 * 1_000_000_000 / 30)),
            "{line:.100}"
        );
        let numbers = |key: &str| -> Vec<f64> {
            let rest = line.split(&format!("\"{key}\":[")).nth(1).unwrap();
            rest.split(']').next().unwrap().split(',').map(|n| n.trim().parse().unwrap()).collect()
        };
        // The astronaut's face: about x 178-270, y 68-172 of the 512x512 photo.
        let [x, y, w, h] = numbers("box")[..] else { panic!("{line:.200}") };
        assert!((160.0..200.0).contains(&x) && (50.0..90.0).contains(&y), "box {x} {y}");
        assert!((70.0..120.0).contains(&w) && (80.0..130.0).contains(&h), "box {w}x{h}");
        let landmarks = line.split("\"landmarks\":[[").nth(1).unwrap();
        assert_eq!(landmarks.matches("],[").count() + 1, 478, "{line:.200}");
    }
}
