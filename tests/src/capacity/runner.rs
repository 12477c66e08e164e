//! One run: whipcast and N publishers started, whipcast's threads and each session's counters read
//! over the window, the files checked once they end, and the run's figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::verdict::due;
use super::{Codec, Counts, SNAPSHOT_EVERY, STAGES, Session, StageCpu, Verdict, face_clip, split, verdict};
use crate::cpu::{self, ThreadTime};
use crate::whipcast::{Server, TOKEN};
use crate::{http, json_u64, json_u64_list, output_path, peers, read_file, report};

/// The publishers' key frames are spread over this (bench_publish.py); then facemark settles.
const STAGGER: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(2);

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
