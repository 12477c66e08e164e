//! Running pipelines and judging what was recorded: decoding with GStreamer, ffmpeg, ffprobe,
//! gst-discoverer and headless Chromium, frame counts and the frames a recording lost.

use std::path::Path;

use gst::prelude::*;

use crate::init;
use crate::process::{json_u64, peers};
use crate::rtp::TimedPacket;

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
pub(crate) fn run_collecting(pipeline: &gst::Pipeline) -> (Vec<(gst::Buffer, Option<gst::Caps>)>, BusReport) {
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

/// Runs of decoded frames of one size, in order: `[((1280, 720), 60), ((852, 480), 30)]` for a
/// file that changes size once.
pub type SizeRuns = Vec<((i32, i32), usize)>;

/// The decoded video frames of a file by size, with the decoding report.
pub fn frames_by_size(path: &Path) -> (SizeRuns, BusReport) {
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
