//! The scripts in pipelines/ run as a user runs them, and produce files that decode.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::*;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines").join(name)
}

/// Where `cargo test` put the plugin .so files.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    assert!(
        dir.join("libgstav1rtp.so").exists(),
        "no libgstav1rtp.so in {}: build the plugins first (make test does: cargo build --workspace)",
        dir.display()
    );
    dir
}

fn command(name: &str) -> Command {
    let mut cmd = Command::new(script(name));
    cmd.env("WHIPCAST_PLUGIN_DIR", plugin_dir());
    cmd
}

#[test]
fn record_scripts_turn_an_rfc4571_file_into_webm_and_mp4() {
    let capture = chrome_capture_rfc4571("capture.rtp");
    for (name, ext) in [("rtp-av1-to-webm.sh", "webm"), ("rtp-av1-to-mp4.sh", "mp4")] {
        let out = output_path(&format!("script.{ext}"));
        let status = command(name).arg(&capture).arg(&out).status().unwrap();
        assert!(status.success(), "{name}: {status}");
        let decoded = decode_file(&out);
        assert!(decoded.report.errors.is_empty(), "{name}: {:?}", decoded.report.errors);
        assert_eq!(decoded.frames, 566, "{name}");
        let duration = discovered_duration(&discover(&out)).unwrap();
        assert!((duration - 28.2).abs() < 0.2, "{name}: duration {duration}");
    }
}

#[test]
fn record_script_rejects_bad_arguments_clearly() {
    let out = command("rtp-av1-record.sh").arg("x.avi").arg("udp://5004").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown output type"));
    let out = command("rtp-av1-record.sh").arg("x.webm").arg("/nonexistent.rtp").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

fn udp_port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| t.contains(&needle))
}

fn interrupt(child: &Child) {
    send_signal(child, libc::SIGINT);
}

#[test]
fn udp_recording_is_finalized_on_ctrl_c() {
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = output_path("udp.webm");
    let mut child =
        command("rtp-av1-to-webm.sh").arg(format!("udp://{port}")).arg(&out).env("PT", "45").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !udp_port_bound(port) {
        assert!(Instant::now() < deadline, "the pipeline never bound port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // About 4 s of the capture, paced by RTP time as a live sender sends it.
    let packets = timed_from_rtp(read_lenrtp(&data_path("chrome_av1.lenrtp")), 90_000);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let mut sent_tus = 0;
    for p in packets.iter().take_while(|p| p.pts < gst::ClockTime::from_seconds(4)) {
        let due = Duration::from_nanos(p.pts.nseconds());
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        socket.send_to(&p.data, ("127.0.0.1", port)).unwrap();
        sent_tus += usize::from(p.data[1] & 0x80 != 0);
    }
    std::thread::sleep(Duration::from_millis(800));
    interrupt(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "gst-launch-1.0 -e exits cleanly on SIGINT: {status}");

    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(decoded.frames * 100 >= sent_tus * 95, "{} of {sent_tus} frames", decoded.frames);
    assert!(discover(&out).contains("AV1"));
}

/// A clip of the astronaut photo (a face) as H.264 MP4, `frames` frames at 30 fps.
fn face_clip(frames: u32) -> PathBuf {
    let path = output_path(&format!("face-{frames}.mp4"));
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc", &format!("location={}", image.display()), "!", "pngdec", "!", "videoconvert"])
        .args(["!", "imagefreeze", &format!("num-buffers={frames}"), "!", "video/x-raw,framerate=30/1"])
        .args(["!", "videoconvert", "!", "x264enc", "speed-preset=ultrafast", "!", "mp4mux"])
        .args(["!", "filesink", &format!("location={}", path.display())])
        .status()
        .unwrap();
    assert!(status.success());
    path
}

#[test]
fn face_snapshots_writes_every_hundredth_frame_annotated() {
    let clip = face_clip(250);
    let out = output_path("snapshots");
    let status = command("face-snapshots.sh").arg(&clip).arg(&out).status().unwrap();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(names, ["z100.jpg", "z200.jpg"]);
    // Each is a real JPEG of the frame size.
    for name in names {
        let decoded = decode_file(&out.join(name));
        assert_eq!(decoded.frames, 1);
        let caps = decoded.caps.unwrap();
        assert_eq!(caps.structure(0).unwrap().get::<i32>("width").unwrap(), 512);
    }
}

#[test]
fn face_to_mp4_records_the_annotated_video() {
    let clip = face_clip(60);
    let out = output_path("annotated.mp4");
    let status = command("face-to-mp4.sh").arg(&clip).arg(&out).status().unwrap();
    assert!(status.success());
    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert_eq!(decoded.frames, 60);
}

/// One WHIP publisher at a time (encoders on a 2-core machine).
static WHIP_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts a WHIP pipeline script on 127.0.0.1 and waits until its endpoint answers.
fn start_whip_script(name: &str, args: &[&Path], extra_env: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let child = command(name)
        .args(args)
        .envs([("WHIP_ADDRESS", "127.0.0.1"), ("WHIP_PORT", &port.to_string()), ("WHIP_STREAM", "live")])
        .envs(extra_env.iter().copied())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "{name} never listened on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

fn whip_publish(port: u16, args: &[&str]) -> u64 {
    let out = whip_publish_command(&format!("http://127.0.0.1:{port}/whip/live")).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "publisher: {text}");
    json_u64(&text, "frames_sent")
}

/// The script ends by itself (EOS after the publisher's DELETE) within `within`.
fn wait_script(mut child: Child, within: Duration) {
    let Some(status) = exit_within(&mut child, within) else {
        panic!("the script did not end within {within:?} after the publisher left")
    };
    assert!(status.success(), "{status}");
}

#[test]
fn whip_record_scripts_record_each_codec_in_its_container() {
    let _serial = WHIP_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (name, codec, ext, muxed) in [
        ("whip-av1-to-webm.sh", "av1", "webm", "AV1"),
        ("whip-h264-to-mp4.sh", "h264", "mp4", "H.264"),
        ("whip-to-mkv.sh", "vp8", "mkv", "VP8"),
    ] {
        let out = output_path(&format!("whip-script.{ext}"));
        let (child, port) = start_whip_script(name, &[&out], &[]);
        let sent = whip_publish(port, &["--codec", codec, "--audio", "--seconds", "4"]);
        wait_script(child, Duration::from_secs(15));
        let decoded = decode_file(&out);
        assert!(decoded.report.errors.is_empty(), "{name}: {:?}", decoded.report.errors);
        assert!(decoded.frames as u64 * 100 >= sent * 95, "{name}: {} of {sent} frames", decoded.frames);
        let report = discover(&out);
        assert!(report.contains(muxed) && report.contains("Opus"), "{name}: {report}");
    }
}

/// A publisher that negotiates audio and never sends any (a browser's audio transceiver without a
/// track; here the OBS-like peer): the MP4 is written while the session runs, not held back for
/// the audio, and ends with every video frame and an empty Opus track that players open.
#[test]
fn whip_record_with_audio_negotiated_and_never_sent_writes_as_it_goes() {
    let _serial = WHIP_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = output_path("silent-audio.mp4");
    let (child, port) = start_whip_script("whip-record.sh", &[&out], &[("WHIP_CODECS", "H264")]);
    let url = format!("http://127.0.0.1:{port}/whip/live");
    let publisher =
        spawn(obs_like_command().args(["--url", &url, "--codec", "H264", "--audio", "--silent-audio"]).args([
            "--start-at-keyframe",
            "--seconds",
            "8",
        ]));
    // mp4mux waits for data on every pad: 1 s fragments only come out once the silent audio
    // stream has ended (silent-stream-timeout, 1 s after the first video).
    let start = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 100_000 {
        assert!(start.elapsed() < Duration::from_secs(6), "nothing written 6 s into the session");
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = publisher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    let sent = json_u64(&text, "framesSent");
    wait_script(child, Duration::from_secs(10));
    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert_eq!(decoded.frames as u64, sent, "frames decoded of those sent");
    // ffmpeg opens it (an audio track without a sample description stops it) and lists the
    // empty Opus track (GStreamer's qtdemux leaves it out).
    let probe = Command::new("ffprobe").args(["-v", "error", "-show_streams"]).arg(&out).output().unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout);
    assert!(probe.status.success() && probe.stderr.is_empty(), "{}", String::from_utf8_lossy(&probe.stderr));
    assert!(streams.contains("codec_name=h264") && streams.contains("codec_name=opus"), "{streams}");
}

#[test]
fn face_snapshots_from_a_whip_publisher() {
    let _serial = WHIP_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = output_path("whip-snapshots");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let (child, port) = start_whip_script("face-snapshots.sh", &[Path::new("whip"), &out], &[]);
    let sent = whip_publish(port, &["--codec", "av1", "--seconds", "5", "--image", image.to_str().unwrap()]);
    wait_script(child, Duration::from_secs(15));
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    // Every 100th of the frames received (at least 95% of those sent).
    let expected: Vec<String> = (1..=sent / 100).map(|n| format!("z{}.jpg", n * 100)).collect();
    let at_least = ((sent * 95 / 100) / 100) as usize;
    assert!(names.len() >= at_least.max(1) && expected.starts_with(&names), "{sent} frames sent: {names:?}");
    let decoded = decode_file(&out.join("z100.jpg"));
    assert_eq!(decoded.caps.unwrap().structure(0).unwrap().get::<i32>("width").unwrap(), 640);
}

#[test]
fn gpu_variants_run_here_and_say_which_decoder_ran() {
    let clip = face_clip(30);
    let out = output_path("annotated-gpu.mp4");
    let run = command("face-to-mp4-gpu.sh").arg(&clip).arg(&out).output().unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    init();
    // Decoder and encoder each on their own: datacenter GPUs (A100, H100, H200) have NVDEC but
    // no NVENC, so nvh264dec can be there without nvh264enc.
    if gst::ElementFactory::find("nvh264dec").is_some() {
        assert!(said.contains("decoder: NVIDIA GPU"), "{said}");
    } else {
        eprintln!("no NVIDIA decoder on this machine: checking the CPU fallback");
        assert!(said.contains("decoder: CPU"), "{said}");
    }
    if gst::ElementFactory::find("nvh264enc").is_some() {
        assert!(said.contains("encoder: nvh264enc"), "{said}");
    } else {
        assert!(said.contains("encoder: x264enc (CPU"), "{said}");
    }
    assert_eq!(decode_file(&out).frames, 30);
}

#[test]
fn whip_relay_marks_faces_and_publishes_onward() {
    let _serial = WHIP_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    init();
    // The far end: another WHIP server recording what the relay sends.
    let far_port = free_port();
    let out = output_path("relayed.mp4");
    let far = gst::parse::launch(&format!(
        "whipcastsrc name=w address=127.0.0.1 port={far_port} token=far-token timeout=5 \
         w.video_0 ! rtph264depay ! h264parse ! mp4mux name=mux ! filesink location={} \
         w.audio_0 ! rtpopusdepay ! opusparse ! mux.",
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    far.set_state(gst::State::Playing).unwrap();

    let target = format!("http://127.0.0.1:{far_port}/whip/live");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let (relay, port) = start_whip_script("whip-relay.sh", &[Path::new(&target)], &[("RELAY_TOKEN", "far-token")]);
    let sent = whip_publish(port, &["--codec", "av1", "--audio", "--seconds", "6", "--image", image.to_str().unwrap()]);
    // The relay serves until Ctrl-C; stopping ends its outgoing session (DELETE), and so the far
    // end's stream (EOS).
    interrupt(&relay);
    wait_script(relay, Duration::from_secs(10));
    let report = run_to_eos(&far, gst::ClockTime::from_seconds(15));
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    // Re-encoded at the relay: the frames that reached it, less the first ones before its encoder
    // and the far session were up.
    assert!(decoded.frames as u64 * 100 >= sent * 80, "{} of {sent} frames relayed", decoded.frames);
    let discovered = discover(&out);
    assert!(discovered.contains("H.264") && discovered.contains("Opus"), "{discovered}");
}
