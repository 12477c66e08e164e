//! Shared support for the integration tests in `tests/tests/`: plugin registration, RTP capture
//! replay with real timestamps, AV1 encoding through real peers, and decoding of what we record.

pub mod capacity;
pub mod cpu;
pub mod relay;
pub mod whipcast;

use std::path::{Path, PathBuf};
use std::sync::Once;

use gst::prelude::*;

/// One RTP packet with the PTS it should carry into the pipeline.
#[derive(Clone)]
pub struct TimedPacket {
    pub data: Vec<u8>,
    pub pts: gst::ClockTime,
}

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initializes");
        gstav1rtp::plugin_register_static().expect("av1rtp registers");
        gstwhipsrc::plugin_register_static().expect("whipsrc registers");
        gstrsrtp::plugin_register_static().expect("gst-plugins-rs rtp registers");
    });
}

/// A file under `tests/data`.
pub fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// A fresh path in the system temp dir for a test's output.
pub fn output_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("whipcast-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Reads a `.lenrtp` capture: records of a u32 big-endian length and one RTP packet.
pub fn read_lenrtp(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 4;
        packets.push(data[pos..pos + len].to_vec());
        pos += len;
    }
    packets
}

/// Writes the Chromium capture as an RFC 4571 stream (u16 big-endian length + packet), the
/// format `filesrc ! rtpstreamdepay` reads, to `name` in the output folder.
pub fn chrome_capture_rfc4571(name: &str) -> PathBuf {
    let path = output_path(name);
    let mut bytes = Vec::new();
    for p in read_lenrtp(&data_path("chrome_av1.lenrtp")) {
        bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&p);
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Timestamps packets from their RTP timestamps (unwrapped, relative to the first), as
/// webrtcbin's jitter buffer would deliver them.
pub fn timed_from_rtp(packets: Vec<Vec<u8>>, clock_rate: u64) -> Vec<TimedPacket> {
    let mut first = None;
    let mut last = 0u32;
    let mut extended = 0i64;
    packets
        .into_iter()
        .map(|data| {
            let ts = u32::from_be_bytes(data[4..8].try_into().unwrap());
            if first.is_none() {
                first = Some(());
                last = ts;
            }
            extended += i64::from(ts.wrapping_sub(last) as i32);
            last = ts;
            let pts = gst::ClockTime::from_nseconds((extended.max(0) as u64) * 1_000_000_000 / clock_rate);
            TimedPacket { data, pts }
        })
        .collect()
}

pub fn av1_rtp_caps() -> gst::Caps {
    init();
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("clock-rate", 90_000i32)
        .field("encoding-name", "AV1")
        .field("payload", 96i32)
        .build()
}

/// What a pipeline run reported on its bus.
#[derive(Debug, Default)]
pub struct BusReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Runs a pipeline until EOS or error (at most `timeout`), collecting errors and warnings.
pub fn run_to_eos(pipeline: &gst::Pipeline, timeout: gst::ClockTime) -> BusReport {
    let mut report = BusReport::default();
    pipeline.set_state(gst::State::Playing).expect("pipeline starts");
    let bus = pipeline.bus().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_nanos(timeout.nseconds());
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            report.errors.push(format!("timed out after {timeout}"));
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                report.errors.push(format!("{}: {:?}", e.error(), e.debug()));
                break;
            }
            gst::MessageView::Warning(w) => report.warnings.push(format!("{}: {:?}", w.error(), w.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    report
}

/// Builds `appsrc ! <tail>` with every packet already queued in the appsrc, then EOS.
fn appsrc_pipeline(packets: &[TimedPacket], caps: &gst::Caps, tail: &str) -> gst::Pipeline {
    init();
    let pipeline = gst::parse::launch(&format!("appsrc name=src format=time ! {tail}"))
        .unwrap_or_else(|e| panic!("pipeline '{tail}': {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.set_caps(Some(caps));
    src.set_max_bytes(0);
    for p in packets {
        let mut buffer = gst::Buffer::from_slice(p.data.clone());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(p.pts);
            b.set_dts(p.pts);
        }
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    pipeline
}

/// Feeds packets through `appsrc ! <tail>` and runs to EOS.
pub fn replay(packets: &[TimedPacket], caps: &gst::Caps, tail: &str) -> BusReport {
    run_to_eos(&appsrc_pipeline(packets, caps, tail), gst::ClockTime::from_seconds(120))
}

/// Replays packets through `appsrc ! <chain> ! appsink` and returns what reached the sink.
pub fn collect(packets: &[TimedPacket], caps: &gst::Caps, chain: &str) -> (Vec<gst::Buffer>, BusReport) {
    let pipeline = appsrc_pipeline(packets, caps, &format!("{chain} ! appsink name=sink sync=false"));
    let (buffers, report) = run_collecting(&pipeline);
    (buffers.into_iter().map(|(b, _)| b).collect(), report)
}

/// Runs a pipeline to EOS, keeping every buffer (with its caps) that reaches the appsink `sink`.
fn run_collecting(pipeline: &gst::Pipeline) -> (Vec<(gst::Buffer, Option<gst::Caps>)>, BusReport) {
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = samples.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let caps = sample.caps_owned();
                store.lock().unwrap().push((sample.buffer_owned().unwrap(), caps));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let report = run_to_eos(pipeline, gst::ClockTime::from_seconds(300));
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    (samples, report)
}

/// Encodes `frames` frames of a moving (detailed) test pattern to AV1 and packetizes them with
/// gst-plugins-rs `rtpav1pay` (a payloader written by others). Key frames every `gop` frames.
pub fn encode_av1_rtp(frames: u32, width: u32, height: u32, gop: u32, mtu: u32) -> Vec<TimedPacket> {
    init();
    let launch = format!(
        "videotestsrc num-buffers={frames} pattern=smpte horizontal-speed=3 ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 \
         ! av1enc min-quantizer=10 max-quantizer=30 cpu-used=8 usage-profile=realtime keyframe-max-dist={gop} \
         ! av1parse ! rtpav1pay mtu={mtu} ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let (buffers, report) = run_collecting(&pipeline);
    assert!(report.errors.is_empty(), "encoding failed: {:?}", report.errors);
    buffers
        .into_iter()
        .map(|(buffer, _)| TimedPacket {
            pts: buffer.pts().expect("payloader keeps timestamps"),
            data: buffer.map_readable().unwrap().to_vec(),
        })
        .collect()
}

/// What decoding a file gave.
#[derive(Debug)]
pub struct Decoded {
    pub frames: usize,
    pub report: BusReport,
    /// Caps of the decoded video.
    pub caps: Option<gst::Caps>,
}

/// Demuxes and decodes a recorded file with decodebin and counts the video frames.
pub fn decode_file(path: &Path) -> Decoded {
    read_file(path, "decodebin ! video/x-raw")
}

/// Runs `filesrc location=<path> ! <chain> ! fakesink` and counts the buffers reaching the sink.
pub fn read_file(path: &Path, chain: &str) -> Decoded {
    init();
    let pipeline =
        gst::parse::launch(&format!("filesrc location={} ! {chain} ! fakesink name=sink sync=false", path.display()))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
    let (frames, caps) = count_frames(&pipeline);
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(120));
    Decoded { frames: frames.load(std::sync::atomic::Ordering::SeqCst), report, caps: caps.lock().unwrap().clone() }
}

/// The decoded video frames of a file by size, in order: `[((1280, 720), 60), ((852, 480), 30)]`
/// for a file that changes size once; with the decoding report.
pub fn frames_by_size(path: &Path) -> (Vec<((i32, i32), usize)>, BusReport) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin name=d ! video/x-raw ! fakesink name=sink sync=false \
           d. ! audio/x-raw ! fakesink sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let runs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<((i32, i32), usize)>::new()));
    let pad = pipeline.by_name("sink").unwrap().static_pad("sink").unwrap();
    let seen = runs.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let size = pad.current_caps().and_then(|c| {
            let s = c.structure(0)?;
            Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
        });
        let size = size.unwrap_or((0, 0));
        let mut runs = seen.lock().unwrap();
        match runs.last_mut() {
            Some((last, count)) if *last == size => *count += 1,
            _ => runs.push((size, 1)),
        }
        gst::PadProbeReturn::Ok
    });
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(120));
    let runs = runs.lock().unwrap().clone();
    (runs, report)
}

type FrameCounter =
    (std::sync::Arc<std::sync::atomic::AtomicUsize>, std::sync::Arc<std::sync::Mutex<Option<gst::Caps>>>);

/// Counts buffers (and remembers caps) arriving at the element named `sink`.
pub fn count_frames(pipeline: &gst::Pipeline) -> FrameCounter {
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let caps = std::sync::Arc::new(std::sync::Mutex::new(None));
    let pad = pipeline.by_name("sink").unwrap().static_pad("sink").unwrap();
    let (f, c) = (frames.clone(), caps.clone());
    pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        match &info.data {
            Some(gst::PadProbeData::Buffer(_)) => {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Some(gst::PadProbeData::Event(e)) => {
                if let gst::EventView::Caps(ev) = e.view() {
                    *c.lock().unwrap() = Some(ev.caps_owned());
                }
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
    (frames, caps)
}

/// `gst-discoverer-1.0`'s report on a file.
pub fn discover(path: &Path) -> String {
    let out = std::process::Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .expect("gst-discoverer-1.0 runs (Debian package gstreamer1.0-plugins-base-apps)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The duration gst-discoverer-1.0 printed, in seconds.
pub fn discovered_duration(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.trim_start().starts_with("Duration:"))?;
    let value = line.split_once("Duration:")?.1.trim();
    let mut parts = value.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// A TU as a list of (OBU type, extension byte, payload), leaving out temporal delimiters and
/// padding: the same normalization for every depayloader we compare.
pub fn normalized_obus(tu: &[u8]) -> Vec<(u8, Option<u8>, Vec<u8>)> {
    use gstav1rtp::av1::obu::{Obus, obu_type};
    Obus::new(tu, false)
        .map(|o| o.expect("well-formed OBUs"))
        .filter(|o| !matches!(o.header.obu_type(), obu_type::TEMPORAL_DELIMITER | obu_type::PADDING))
        .map(|o| {
            let ext = o.header.has_extension().then(|| o.header.temporal_id() << 5 | o.header.spatial_id() << 3);
            (o.header.obu_type(), ext, o.payload.to_vec())
        })
        .collect()
}

/// A small deterministic PRNG for loss patterns (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A free TCP/UDP port number on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP response as a test sees it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// A plain HTTP/1.1 request (Connection: close) to 127.0.0.1:`port`.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    http_from(std::net::Ipv4Addr::LOCALHOST, port, method, path, headers, body)
}

/// [`http`] from the loopback address `source` (any of 127.0.0.0/8): another client to the server.
pub fn http_from(
    source: std::net::Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).expect("server is listening");
    let mut stream = std::net::TcpStream::from(socket);
    stream.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // A server may answer (413, 401) before reading a large body; that is fine.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse { status, headers, body: body.to_owned() }
}

/// `offer` (OBS's two bundled sections) without its BUNDLE group and grown to `sections` media
/// sections, each asking webrtcbin for a transport of its own: the offer of a hostile client.
pub fn unbundled_offer(offer: &str, sections: usize) -> String {
    let mut text = offer.replace("a=group:BUNDLE 0 1\r\n", "").replace("a=group:BUNDLE 0 1\n", "");
    for i in 2..sections {
        text += &format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=sendonly\r\na=rtpmap:96 AV1/90000\r\n");
    }
    text
}

/// The folder of the peers in tests/peers (installed by `make test` through their setup.sh).
pub fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// The OBS-like publisher (libdatachannel, `tests/peers/obs_like/publish.py`), arguments to add.
pub fn obs_like_command() -> std::process::Command {
    let python = peers().join("obs_like/.venv/bin/python");
    assert!(python.exists(), "run tests/peers/obs_like/setup.sh (make test does)");
    let mut command = std::process::Command::new(python);
    command.arg(peers().join("obs_like/publish.py"));
    command
}

/// Starts a publisher process (`tests/src/bin/whip-publish.rs`, a peer in `tests/peers`, ...)
/// with its one-line JSON report on a pipe.
pub fn spawn(command: &mut std::process::Command) -> std::process::Child {
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().expect("publisher starts")
}

/// The number after `"key":` in a one-line JSON report.
pub fn json_u64(text: &str, key: &str) -> u64 {
    let after = text.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("{key} missing in {text}"));
    after.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The numbers in a one-line JSON report's `"key":[...]` (or `"key": [...]`).
pub fn json_u64_list(text: &str, key: &str) -> Vec<u64> {
    let rest = text.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("no {key} in {text}"));
    let list = rest.trim_start().strip_prefix('[').and_then(|r| r.split(']').next()).unwrap_or_default();
    list.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

/// Waits for a publisher started with [`spawn`] and returns its one-line JSON report, which must say `ok`.
pub fn report(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = text.contains("\"ok\":true") || text.contains("\"ok\": true");
    assert!(out.status.success() && ok, "publisher failed: {text}");
    text
}

/// `target/debug`, where `cargo build --workspace` (which `make test` runs before the tests) puts
/// the workspace's binaries and the plugins' .so files.
pub fn build_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("debug")
}

/// A binary of this workspace built by `cargo build --workspace` (e.g. `whipcast`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = build_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first", path.display());
    path
}

/// What ffmpeg made of a file: video frames decoded and every message at error level.
#[derive(Debug)]
pub struct FfmpegDecode {
    pub video_frames: u64,
    pub errors: Vec<String>,
}

/// Decodes the first video stream (and every other stream) of `path` with ffmpeg, as a player
/// would: any demuxer or decoder complaint is an error.
pub fn ffmpeg_decode(path: &Path) -> FfmpegDecode {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .expect("ffmpeg runs (Debian package ffmpeg; make test-deps installs it)");
    let progress = String::from_utf8_lossy(&out.stdout);
    let video_frames =
        progress.lines().filter_map(|l| l.strip_prefix("frame=")).next_back().and_then(|n| n.trim().parse().ok());
    // Lines of the `null` muxer are about ffmpeg's own output (frames rounded to its output time
    // base, 1/fps, can land on one tick: "non monotonically increasing dts"), not about the file.
    // ("Last message repeated N times" belongs to the line before it.)
    let mut ours = true;
    let mut errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| {
            if !l.trim_start().starts_with("Last message repeated") {
                ours = !l.starts_with("[null @");
            }
            ours
        })
        .map(str::to_owned)
        .collect();
    if !out.status.success() {
        errors.push(format!("ffmpeg exited with {}", out.status));
    }
    FfmpegDecode { video_frames: video_frames.unwrap_or(0), errors }
}

/// The presentation times (s) of the first video stream's packets in `path`, in file order (ffprobe).
pub fn video_pts(path: &Path) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian package ffmpeg)");
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Which of `sent` (RTP timestamps at 90 kHz) have no frame at the same time in `recorded`
/// (presentation times in s, from any origin): where a recording lost frames. The file's first
/// frame is taken for whichever of the first sent frames lines up the most frames.
pub fn missing_frames(sent: &[u32], recorded: &[f64]) -> Vec<usize> {
    let Some(first_recorded) = recorded.iter().copied().reduce(f64::min) else {
        return (0..sent.len()).collect();
    };
    let times: Vec<f64> = recorded.iter().map(|t| t - first_recorded).collect();
    let missing_from = |origin: u32| -> Vec<usize> {
        sent.iter()
            .enumerate()
            .filter(|(_, ts)| {
                let at = f64::from(ts.wrapping_sub(origin) as i32) / 90_000.0;
                // Within half a frame at 30 fps: the two clocks jitter by a few ms.
                !times.iter().any(|t| (t - at).abs() < 0.016)
            })
            .map(|(i, _)| i)
            .collect()
    };
    sent.iter().take(90).map(|&origin| missing_from(origin)).min_by_key(Vec::len).unwrap_or_default()
}

/// A busy machine: one spinning thread per core (what `stress-ng --cpu N` does), until dropped.
pub struct CpuHog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuHog {
    pub fn start() -> CpuHog {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                })
            })
            .collect();
        CpuHog { stop, threads }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Plays `files` to their ends in headless Chromium (tests/peers/chromium/play.mjs); returns the
/// frames each played, failing on any media error or a file that did not reach its end.
pub fn chromium_plays<'a>(files: impl Iterator<Item = &'a std::path::Path>) -> Vec<u64> {
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test does)");
    let out = std::process::Command::new("node")
        .arg(peers().join("chromium/play.mjs"))
        .args(files)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("\"ok\":true"), "Chromium did not play every file: {text}");
    text.split("{\"file\":").skip(1).map(|file| json_u64(file, "frames")).collect()
}
