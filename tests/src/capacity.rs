//! How many live publishers one `whipcast serve` records and analyses in real time: N OBS-like
//! publishers (tests/peers/obs_like/bench_publish.py, one process, no live encoding) send a
//! 1280x720 30 fps clip with a face moving in it, H.264 or AV1, to one whipcast with facemark on.
//!
//! Over a window once every session is up, it reads the CPU time of each of whipcast's threads
//! and splits it by stage from the threads' names (whipcast names the queues that start each
//! stage), and counts each session's recorded frames (`/metrics`), analysed frames (lines of its
//! `.landmarks.jsonl`) and snapshots. Real time means: the recording keeps the publishers' pace
//! and loses nothing (its file holds every frame sent), facemark analyses at least 90 % of the
//! frames and finds the face in at least 90 % of those, the snapshots keep up. `cargo bench --bench capacity` searches the largest such N;
//! tests/tests/capacity.rs runs N = 2 for 5 s.
//!
//! The parts that decide (the stage of a thread, the split, the verdict, the next N to try) are
//! plain functions with their unit tests below; [`run`] does the IO.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gst::prelude::*;

use crate::cpu::{self, ThreadTime};
use crate::whipcast::{Server, TOKEN};
use crate::{http, init, json_u64, json_u64_list, output_path, peers, read_file, report, run_to_eos};

pub const FPS: f64 = 30.0;
/// A snapshot every this many frames (`--snapshot-every`).
pub const SNAPSHOT_EVERY: u64 = 30;
/// Share of the frames facemark must analyse.
pub const ANALYSED_SHARE: f64 = 0.9;
/// Share of the analysed frames in which facemark must find the face (the clip has one in every
/// frame; a frame analysed without it was analysed in vain).
pub const FACE_SHARE: f64 = 0.9;
/// The clip: 10 s, a key frame every 2 s (OBS's recommended interval), 1280x720.
const CLIP_FRAMES: u32 = 300;
const KEY_INTERVAL: u32 = 60;
const WIDTH: i32 = 1280;
const HEIGHT: i32 = 720;
/// OBS's default video bitrate, kbit/s.
const BITRATE_KBPS: u32 = 2500;
/// The publishers' key frames are spread over this (bench_publish.py); then facemark settles.
const STAGGER: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    Av1,
}

impl Codec {
    /// The name bench_publish.py and whipcast use.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Av1 => "AV1",
        }
    }

    /// The clip's encoder, OBS-like: no B-frames, a fixed key-frame interval, about OBS's default
    /// bitrate.
    fn encoder(self) -> String {
        match self {
            Codec::H264 => format!(
                "x264enc tune=zerolatency speed-preset=veryfast bitrate={BITRATE_KBPS} key-int-max={KEY_INTERVAL} \
                 bframes=0 aud=true option-string=scenecut=0 ! h264parse config-interval=-1 ! \
                 video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
            ),
            // libaom's realtime rate control aborts (an assertion in 3.6) or overshoots on this
            // content: a fixed quantizer sets the rate (about 2.5 Mbit/s here) instead.
            Codec::Av1 => format!(
                "av1enc min-quantizer=53 max-quantizer=53 cpu-used=8 usage-profile=realtime threads=2 \
                 keyframe-max-dist={KEY_INTERVAL} ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu"
            ),
        }
    }

    /// Demuxes whipcast's recording of this codec to its video frames.
    fn demuxer(self) -> &'static str {
        match self {
            Codec::H264 => "qtdemux ! video/x-h264",
            Codec::Av1 => "matroskademux ! video/x-av1",
        }
    }
}

/// Where whipcast's CPU goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// HTTP, ICE, DTLS, SRTP, jitter buffers, depayloading: and every thread not named below.
    Ingest,
    /// A recording's input queues, muxer, fragmentsync and file.
    Recording,
    /// Parsing and decoding for facemark (the decoder's own threads included).
    Decoding,
    /// Conversion, facemark (its inference thread) and the snapshots' JPEGs.
    Facemark,
}

pub const STAGES: [Stage; 4] = [Stage::Ingest, Stage::Recording, Stage::Decoding, Stage::Facemark];

impl Stage {
    /// The stage a whipcast thread works for, by its name. GStreamer names a queue's thread
    /// `<queue>:src` (15 bytes at most); whipcast names its queues (app/src/recorder.rs): `in-*`
    /// and `to-mux` for the recording, `face-decode` before the decoder, `face-mark` before
    /// facemark. libavcodec's threads take the name of the thread that opened the decoder
    /// (`face-decode:src`); dav1d names its own; facemark's inference thread is `facemark-infer`.
    pub fn of(thread: &str) -> Stage {
        if thread.starts_with("face-decode") || thread.starts_with("dav1d") {
            Stage::Decoding
        } else if thread.starts_with("face-mark") || thread.starts_with("facemark") {
            Stage::Facemark
        } else if thread.starts_with("in-") || thread.starts_with("to-mux") {
            Stage::Recording
        } else {
            Stage::Ingest
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Recording => "recording",
            Stage::Decoding => "decoding",
            Stage::Facemark => "facemark",
        }
    }
}

/// CPU time by stage, in [`STAGES`]' order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageCpu(pub [Duration; 4]);

impl StageCpu {
    pub fn get(&self, stage: Stage) -> Duration {
        self.0[STAGES.iter().position(|s| *s == stage).unwrap_or(0)]
    }

    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }
}

/// The CPU each stage used between two readings of a process's threads. A thread that started
/// in between counts from zero; one that ended in between is missing from `after`, and its time
/// with it (whipcast's threads live as long as their session).
pub fn split(before: &[ThreadTime], after: &[ThreadTime]) -> StageCpu {
    let mut by_stage = StageCpu::default();
    for thread in after {
        let earlier = before.iter().find(|b| b.tid == thread.tid).map_or(Duration::ZERO, |b| b.cpu);
        let index = STAGES.iter().position(|s| *s == Stage::of(&thread.name)).unwrap_or(0);
        by_stage.0[index] += thread.cpu.saturating_sub(earlier);
    }
    by_stage
}

/// One session's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Video frames gone to the recording (`whipcast_recording_frames_total`).
    pub recorded: u64,
    /// Frames facemark analysed (lines of the session's `.landmarks.jsonl`), and those it
    /// found a face in.
    pub analysed: u64,
    pub with_face: u64,
    /// Snapshots written.
    pub snapshots: u64,
}

impl Counts {
    fn since(self, earlier: Counts) -> Counts {
        Counts {
            recorded: self.recorded.saturating_sub(earlier.recorded),
            analysed: self.analysed.saturating_sub(earlier.analysed),
            with_face: self.with_face.saturating_sub(earlier.with_face),
            snapshots: self.snapshots.saturating_sub(earlier.snapshots),
        }
    }
}

/// What one session did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub stream: String,
    /// Over the measuring window.
    pub window: Counts,
    /// Frames its publisher sent, and frames its file holds, over the whole session.
    pub sent: u64,
    pub in_file: u64,
}

/// Why a run was not real time (nothing: it was).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub failures: Vec<String>,
}

impl Verdict {
    pub fn real_time(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Frames a session should have had in `window` at [`FPS`], and the least a live path may show
/// of them: a frame or two sits in a queue at either end of the window.
fn due(window: Duration) -> (f64, f64) {
    let due = FPS * window.as_secs_f64();
    (due, due - 3.0)
}

/// Real time: every session's file holds every frame sent, its recording kept the pace, facemark
/// analysed [`ANALYSED_SHARE`] of the frames due and found the face in [`FACE_SHARE`] of those,
/// and the snapshots kept up with them.
pub fn verdict(sessions: &[Session], expected: usize, window: Duration) -> Verdict {
    let mut failures = Vec::new();
    if sessions.len() != expected {
        failures.push(format!("{} of {expected} sessions recorded", sessions.len()));
    }
    let (due, least) = due(window);
    for s in sessions {
        let name = &s.stream;
        if s.in_file != s.sent {
            failures.push(format!("{name}: its file holds {} of the {} frames sent", s.in_file, s.sent));
        }
        if (s.window.recorded as f64) < least {
            failures.push(format!("{name}: {} frames recorded of {due:.0} due", s.window.recorded));
        }
        if (s.window.analysed as f64) < ANALYSED_SHARE * due {
            failures.push(format!("{name}: facemark analysed {} frames of {due:.0}", s.window.analysed));
        }
        if (s.window.with_face as f64) < FACE_SHARE * s.window.analysed as f64 {
            failures.push(format!("{name}: a face in {} of {} frames analysed", s.window.with_face, s.window.analysed));
        }
        let snapshots_due = (least / SNAPSHOT_EVERY as f64).floor() - 1.0;
        if (s.window.snapshots as f64) < snapshots_due {
            failures.push(format!("{name}: {} snapshots of {snapshots_due:.0} due", s.window.snapshots));
        }
    }
    Verdict { failures }
}

/// The next N to try, given what was tried (N, real time): doubling from 1 while real time (up
/// to `most`), then halving the gap between the largest N that was and the smallest that was
/// not. None: the largest is found.
pub fn next_n(tried: &[(usize, bool)], most: usize) -> Option<usize> {
    let failed = tried.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).min();
    let passed = tried.iter().filter(|(n, ok)| *ok && failed.is_none_or(|f| *n < f)).map(|(n, _)| *n).max();
    let next = match (passed, failed) {
        (None, None) => 1,
        (None, Some(_)) => return None,
        (Some(p), None) => (p * 2).min(most),
        (Some(p), Some(f)) => p + (f - p) / 2,
    };
    (!tried.iter().any(|(n, _)| *n == next)).then_some(next)
}

/// The largest N that was real time.
pub fn largest(tried: &[(usize, bool)]) -> Option<usize> {
    let failed = tried.iter().filter(|(_, ok)| !ok).map(|(n, _)| *n).min();
    tried.iter().filter(|(n, ok)| *ok && failed.is_none_or(|f| *n < f)).map(|(n, _)| *n).max()
}

/// One run's figures.
#[derive(Debug)]
pub struct Run {
    pub codec: Codec,
    pub n: usize,
    pub window: Duration,
    pub stages: StageCpu,
    /// whipcast's whole CPU, the publishers' process's, the machine's (all over the window).
    pub server: Duration,
    pub publishers: Duration,
    pub machine: Duration,
    pub sessions: Vec<Session>,
    pub verdict: Verdict,
    /// What whipcast said it decodes with ("dav1ddec").
    pub decoder: String,
    pub clip_kbps: u64,
    /// Frames the publishers sent more than 20 ms late (the machine was too busy for them too).
    pub late_frames: u64,
    /// whipcast's threads at the window's end, as (name, nice value).
    pub niceness: Vec<(String, i64)>,
}

impl Run {
    /// `cpu` as a percentage of one core over the window, per publisher.
    pub fn per_publisher(&self, cpu: Duration) -> f64 {
        100.0 * cpu.as_secs_f64() / self.window.as_secs_f64() / self.n as f64
    }

    /// A share of the window, % of one core.
    pub fn percent(&self, cpu: Duration) -> f64 {
        100.0 * cpu.as_secs_f64() / self.window.as_secs_f64()
    }

    /// One line: the verdict, whipcast's CPU per publisher by stage, the rest.
    pub fn summary(&self) -> String {
        let stages: Vec<String> =
            STAGES.iter().map(|s| format!("{} {:.1}", s.label(), self.per_publisher(self.stages.get(*s)))).collect();
        let (due, _) = due(self.window);
        let share = |f: fn(&Counts) -> u64| {
            let least = self.sessions.iter().map(|s| f(&s.window)).min().unwrap_or(0);
            100.0 * least as f64 / due
        };
        format!(
            "{} N={}: {}; whipcast {:.0} % of a core, per publisher {:.1} % ({}; % of a core), publishers {:.0} %, \
             machine {:.0} % of {} cores; least recorded {:.0} %, analysed {:.0} % (a face in {:.0} %) of frames; \
             decoder {}, clip {} kbit/s, \
             {} late frames{}",
            self.codec.name(),
            self.n,
            if self.verdict.real_time() { "real time" } else { "NOT real time" },
            self.percent(self.server),
            self.per_publisher(self.server),
            stages.join(", "),
            self.percent(self.publishers),
            self.percent(self.machine),
            cpu::cores(),
            share(|c| c.recorded),
            share(|c| c.analysed),
            share(|c| c.with_face),
            self.decoder,
            self.clip_kbps,
            self.late_frames,
            if self.verdict.real_time() { String::new() } else { format!(" ({})", self.verdict.failures.join("; ")) }
        )
    }
}

/// `target/capacity`, where the clips are kept between runs.
fn clip_dir() -> PathBuf {
    crate::build_dir().parent().map(Path::to_path_buf).unwrap_or_default().join("capacity")
}

/// The clip for `codec` (encoded once, then kept): smpte bars scrolling behind the astronaut
/// photo, which swings left and right once per clip (so the loop is seamless).
pub fn face_clip(codec: Codec) -> PathBuf {
    let path =
        clip_dir().join(format!("face-720p30-{}.{}", codec.name(), if codec == Codec::H264 { "h264" } else { "obu" }));
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return path;
    }
    init();
    std::fs::create_dir_all(clip_dir()).expect("target/capacity is writable");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    let raw = format!("video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1");
    let launch = format!(
        "compositor name=mix ! {raw} ! {} ! filesink location={} \
         videotestsrc pattern=smpte horizontal-speed=2 num-buffers={CLIP_FRAMES} ! {raw} ! mix.sink_0 \
         filesrc location={} ! pngdec ! imagefreeze num-buffers={CLIP_FRAMES} ! videoconvert ! \
         video/x-raw,framerate=30/1 ! mix.sink_1",
        codec.encoder(),
        temporary.display(),
        image.display()
    );
    let pipeline = gst::parse::launch(&launch).expect("the clip pipeline").downcast::<gst::Pipeline>().unwrap();
    let mix = pipeline.by_name("mix").unwrap();
    let face = mix.static_pad("sink_1").expect("the face's pad");
    face.set_property("ypos", 104i32);
    face.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            let turn = pts.seconds_f64() * FPS / CLIP_FRAMES as f64 * std::f64::consts::TAU;
            let middle = f64::from(WIDTH - 512) / 2.0;
            pad.set_property("xpos", (middle + middle * turn.sin()) as i32);
        }
        gst::PadProbeReturn::Ok
    });
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(600));
    assert!(report.errors.is_empty(), "encoding the {} clip: {:?}", codec.name(), report.errors);
    std::fs::rename(&temporary, &path).unwrap();
    path
}

/// The sample `whipcast_recording_frames_total{stream="<stream>"}` of a `/metrics` text.
fn recorded_frames(metrics: &str, stream: &str) -> Option<u64> {
    let prefix = format!("whipcast_recording_frames_total{{stream=\"{stream}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

/// The path in `folder` starting with `<stream>-` (whipcast's `<stream>-<UTC time>` names) and
/// ending with `suffix` ("" for the snapshot folder).
fn session_path(folder: &Path, stream: &str, suffix: &str) -> Option<PathBuf> {
    let start = format!("{stream}-");
    std::fs::read_dir(folder).ok()?.filter_map(Result::ok).map(|e| e.path()).find(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name.starts_with(&start)
            && match suffix {
                "" => p.is_dir(),
                _ => name.ends_with(suffix),
            }
    })
}

struct Sample {
    threads: Vec<ThreadTime>,
    server: Duration,
    publishers: Duration,
    machine: Duration,
    at: Instant,
    counts: Vec<Counts>,
}

/// whipcast's `/metrics` text.
fn metrics(server: &Server) -> String {
    http(server.port, "GET", "/metrics", &[("Authorization", &format!("Bearer {TOKEN}"))], b"").body
}

fn sample(server: &Server, publishers: &Child, streams: &[String]) -> Sample {
    let pid = server.child.id();
    let metrics = metrics(server);
    let counts = streams
        .iter()
        .map(|stream| {
            let landmarks = session_path(&server.folder, stream, ".landmarks.jsonl")
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            // Only whole lines: the last one may be half written.
            let lines = landmarks.rsplit_once('\n').map_or("", |(whole, _)| whole);
            let lines = lines.lines().filter(|l| !l.is_empty());
            let (analysed, with_face) =
                lines.fold((0, 0), |(a, f), l| (a + 1, f + u64::from(l.contains("\"faces\":[{"))));
            Counts {
                recorded: recorded_frames(&metrics, stream).unwrap_or(0),
                analysed,
                with_face,
                snapshots: session_path(&server.folder, stream, "")
                    .and_then(|d| std::fs::read_dir(d).ok())
                    .map_or(0, |d| d.count() as u64),
            }
        })
        .collect();
    Sample {
        threads: cpu::threads(pid),
        server: cpu::process_cpu(pid),
        publishers: cpu::process_cpu(publishers.id()),
        machine: cpu::machine_busy(),
        at: Instant::now(),
        counts,
    }
}

/// gst-plugins-rs's plugins built beside ours (dav1ddec: `make dav1d`), as `make run` finds them.
fn extra_plugins() -> Vec<(String, String)> {
    let dir = crate::build_dir().parent().map(|t| t.join("gst-plugins-rs")).filter(|d| d.is_dir());
    let path = dir.map(|d| match std::env::var("GST_PLUGIN_PATH") {
        Ok(old) if !old.is_empty() => format!("{}:{old}", d.display()),
        _ => d.display().to_string(),
    });
    path.map(|p| vec![("GST_PLUGIN_PATH".to_owned(), p)]).unwrap_or_default()
}

/// N publishers of `codec` into `whipcast` (the binary, given `serve_args` too) for a window of
/// `window`.
pub fn run(whipcast: &Path, serve_args: &[String], codec: Codec, n: usize, window: Duration) -> Run {
    let clip = face_clip(codec);
    let folder = output_path(&format!("capacity-{}-{n}", codec.name()));
    let _ = std::fs::remove_dir_all(&folder);
    let streams: Vec<String> = (0..n).map(|i| format!("bench{i}")).collect();
    let mut args: Vec<String> = streams.iter().flat_map(|s| ["--stream".to_owned(), s.clone()]).collect();
    let every = SNAPSHOT_EVERY.to_string();
    args.extend(["--snapshot-every", &every, "--snapshot-frames", "0", "--sessions", &n.to_string()].map(String::from));
    args.extend_from_slice(serve_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::spawn_with(whipcast, folder.clone(), &args, Some(TOKEN), &extra_plugins());

    let seconds = (STAGGER + SETTLE + window).as_secs_f64() + 2.0;
    let python = peers().join("obs_like/.venv/bin/python");
    assert!(python.exists(), "run tests/peers/obs_like/setup.sh first (make test-deps does)");
    let mut publishers = Command::new(python)
        .arg(peers().join("obs_like/bench_publish.py"))
        .args(["--url", &format!("http://127.0.0.1:{}/whip/bench{{}}", server.port), "--token", TOKEN])
        .args(["--codec", codec.name(), "--clip", clip.to_str().unwrap()])
        .args(["--count", &n.to_string(), "--seconds", &format!("{seconds:.1}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the publishers start");

    // Every session records; then the last publisher's first key frame and facemark's first
    // detection are behind.
    let connect = Instant::now();
    loop {
        let metrics = metrics(&server);
        if streams.iter().all(|s| recorded_frames(&metrics, s).is_some_and(|f| f > 0)) {
            break;
        }
        // Publishers that gave up (their error is on stderr above) will not be recorded.
        if let Ok(Some(status)) = publishers.try_wait() {
            panic!(
                "the publishers exited ({status}) before every session recorded:\n{}",
                server.output.lock().unwrap()
            );
        }
        assert!(
            connect.elapsed() < Duration::from_secs(30 + n as u64),
            "not every session records after {:?}:\n{}",
            connect.elapsed(),
            server.output.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(STAGGER + SETTLE);
    let before = sample(&server, &publishers, &streams);
    std::thread::sleep(window);
    let after = sample(&server, &publishers, &streams);
    let window = after.at - before.at;

    let sent_report = report(publishers);
    let output = server.wait_exit(Duration::from_secs(60 + 5 * n as u64));
    let sent = json_u64_list(&sent_report, "framesSent");
    let sessions = streams
        .iter()
        .enumerate()
        .map(|(i, stream)| {
            let file = session_path(&folder, stream, if codec == Codec::H264 { ".mp4" } else { ".webm" });
            let in_file = file.map_or(0, |f| {
                let read = read_file(&f, codec.demuxer());
                assert!(read.report.errors.is_empty(), "{}: {:?}", f.display(), read.report.errors);
                read.frames as u64
            });
            Session {
                stream: stream.clone(),
                window: after.counts[i].since(before.counts[i]),
                sent: sent.get(i).copied().unwrap_or(0),
                in_file,
            }
        })
        .collect::<Vec<_>>();
    let decoder = output
        .split("facemark after ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next())
        .unwrap_or("none")
        .to_owned();
    let _ = std::fs::remove_dir_all(&folder);
    Run {
        codec,
        n,
        window,
        stages: split(&before.threads, &after.threads),
        server: after.server.saturating_sub(before.server),
        publishers: after.publishers.saturating_sub(before.publishers),
        machine: after.machine.saturating_sub(before.machine),
        verdict: verdict(&sessions, n, window),
        sessions,
        decoder,
        clip_kbps: json_u64(&sent_report, "clipKbps"),
        late_frames: json_u64(&sent_report, "lateFrames"),
        niceness: after.threads.iter().map(|t| (t.name.clone(), t.nice)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread(tid: u32, name: &str, ms: u64) -> ThreadTime {
        ThreadTime { tid, name: name.to_owned(), cpu: Duration::from_millis(ms), nice: 0 }
    }

    #[test]
    fn threads_go_to_their_stage_by_name() {
        for (name, stage) in [
            ("face-decode:src", Stage::Decoding),
            ("dav1d-worker", Stage::Decoding),
            ("face-mark:src", Stage::Facemark),
            ("facemark-infer", Stage::Facemark),
            ("in-video_0:src", Stage::Recording),
            ("in-audio_0:src", Stage::Recording),
            ("to-mux:src", Stage::Recording),
            ("rtpjitterbuffer", Stage::Ingest),
            ("nicesrc0:src", Stage::Ingest),
            ("tokio-runtime-w", Stage::Ingest),
            ("whipcast", Stage::Ingest),
        ] {
            assert_eq!(Stage::of(name), stage, "{name}");
        }
    }

    #[test]
    fn the_split_counts_what_each_thread_used_in_between() {
        let before = [thread(1, "whipcast", 500), thread(2, "face-decode:src", 100), thread(3, "gone", 900)];
        let after = [
            thread(1, "whipcast", 700),
            thread(2, "face-decode:src", 400),
            // Started in between: all its time is the window's.
            thread(4, "face-decode:src", 50),
            thread(5, "facemark-infer", 250),
            thread(6, "to-mux:src", 10),
        ];
        let split = split(&before, &after);
        assert_eq!(split.get(Stage::Ingest), Duration::from_millis(200));
        assert_eq!(split.get(Stage::Decoding), Duration::from_millis(350));
        assert_eq!(split.get(Stage::Facemark), Duration::from_millis(250));
        assert_eq!(split.get(Stage::Recording), Duration::from_millis(10));
        assert_eq!(split.total(), Duration::from_millis(810));
    }

    fn session(recorded: u64, analysed: u64, snapshots: u64, sent: u64, in_file: u64) -> Session {
        Session {
            stream: "bench0".into(),
            window: Counts { recorded, analysed, with_face: analysed, snapshots },
            sent,
            in_file,
        }
    }

    #[test]
    fn real_time_needs_every_frame_kept_and_most_analysed_with_the_face() {
        let window = Duration::from_secs(10);
        // 300 frames due in 10 s; 10 snapshots.
        assert!(verdict(&[session(300, 300, 10, 480, 480)], 1, window).real_time());
        // A frame or two in a queue at either end of the window is not falling behind.
        assert!(verdict(&[session(298, 271, 9, 480, 480)], 1, window).real_time());

        let lost = verdict(&[session(300, 300, 10, 480, 479)], 1, window);
        assert_eq!(lost.failures, ["bench0: its file holds 479 of the 480 frames sent"]);
        let behind = verdict(&[session(290, 300, 10, 480, 480)], 1, window);
        assert_eq!(behind.failures, ["bench0: 290 frames recorded of 300 due"]);
        let unanalysed = verdict(&[session(300, 269, 10, 480, 480)], 1, window);
        assert_eq!(unanalysed.failures, ["bench0: facemark analysed 269 frames of 300"]);
        let mut faceless = session(300, 300, 10, 480, 480);
        faceless.window.with_face = 269;
        assert_eq!(verdict(&[faceless], 1, window).failures, ["bench0: a face in 269 of 300 frames analysed"]);
        let no_snapshots = verdict(&[session(300, 300, 7, 480, 480)], 1, window);
        assert_eq!(no_snapshots.failures, ["bench0: 7 snapshots of 8 due"]);
        let missing = verdict(&[session(300, 300, 10, 480, 480)], 2, window);
        assert_eq!(missing.failures, ["1 of 2 sessions recorded"]);
    }

    #[test]
    fn the_search_doubles_then_halves_the_gap() {
        assert_eq!(next_n(&[], 64), Some(1));
        assert_eq!(next_n(&[(1, true)], 64), Some(2));
        assert_eq!(next_n(&[(1, true), (2, true), (4, true)], 64), Some(8));
        assert_eq!(next_n(&[(1, true), (2, true), (4, true), (8, false)], 64), Some(6));
        let tried = [(1, true), (2, true), (4, true), (8, false), (6, false)];
        assert_eq!(next_n(&tried, 64), Some(5));
        let done = [(1, true), (2, true), (4, true), (8, false), (6, false), (5, true)];
        assert_eq!(next_n(&done, 64), None);
        assert_eq!(largest(&done), Some(5));
        // A pass above a failure (a noisy machine) does not count.
        assert_eq!(largest(&[(1, true), (4, false), (6, true)]), Some(1));
        assert_eq!(next_n(&[(1, false)], 64), None);
        assert_eq!(largest(&[(1, false)]), None);
        // The ceiling.
        assert_eq!(next_n(&[(1, true), (2, true)], 3), Some(3));
        assert_eq!(next_n(&[(1, true), (2, true), (3, true)], 3), None);
    }

    #[test]
    fn metrics_and_session_files_are_found_by_stream() {
        let text = "# TYPE whipcast_recording_frames_total counter\n\
                    whipcast_recording_frames_total{stream=\"bench1\"} 12\n\
                    whipcast_recording_frames_total{stream=\"bench10\"} 99\n";
        assert_eq!(recorded_frames(text, "bench1"), Some(12));
        assert_eq!(recorded_frames(text, "bench10"), Some(99));
        assert_eq!(recorded_frames(text, "bench2"), None);

        let folder = output_path("capacity-session-paths");
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(folder.join("bench1-20261201T000000Z")).unwrap();
        for name in
            ["bench1-20261201T000000Z.mp4", "bench10-20261201T000000Z.mp4", "bench1-20261201T000000Z.landmarks.jsonl"]
        {
            std::fs::write(folder.join(name), b"").unwrap();
        }
        let name = |p: Option<PathBuf>| p.and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        assert_eq!(name(session_path(&folder, "bench1", ".mp4")).as_deref(), Some("bench1-20261201T000000Z.mp4"));
        assert_eq!(name(session_path(&folder, "bench10", ".mp4")).as_deref(), Some("bench10-20261201T000000Z.mp4"));
        assert_eq!(name(session_path(&folder, "bench1", "")).as_deref(), Some("bench1-20261201T000000Z"));
        assert_eq!(session_path(&folder, "bench2", ".mp4"), None);
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
