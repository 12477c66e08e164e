//! What whipcast says of its recordings: the progress lines, the `recorded ...` line at the end
//! of each, and the `/metrics` snapshot.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;

use super::{Inner, Recording};
use crate::metrics::{SessionMetrics, Snapshot};
use crate::progress;
use crate::viewing;

impl Inner {
    /// `recorded FILE (N video frames, S s; K snapshots in DIR)`.
    pub(super) fn describe(&self, recording: &Recording, frames: u64) -> String {
        let mut line = format!(
            "recorded {} ({frames} video frames, {:.1} s",
            recording.file.display(),
            recording.started.elapsed().as_secs_f64()
        );
        if let Some(dir) = &recording.snapshot_dir {
            line += &format!("; {} snapshots in {}", recording.snapshots.load(Ordering::Relaxed), dir.display());
        }
        line + ")"
    }

    /// What `/metrics` says now: each stream's live session from its whipcastsrc's stats.
    pub(super) fn metrics(&self, address: SocketAddr) -> Snapshot {
        // Read, then released before asking the elements: a session starting holds an element's
        // lock while its pad-added handler waits for this one.
        let recorded: Vec<(gst::Element, u64)> = {
            let state = self.state.lock().unwrap();
            state.live.values().map(|r| (r.src.clone(), r.frames.load(Ordering::Relaxed))).collect()
        };
        let mut sessions = Vec::new();
        for stream in &self.args.streams {
            let Some(src) = self.pipeline.by_name(&format!("whip-{stream}")) else { continue };
            let stats = src.property::<gst::Structure>("stats");
            let Ok(session) = stats.get::<gst::Structure>("session") else { continue };
            let count = |name: &str| session.get::<u64>(name).unwrap_or(0);
            sessions.push(SessionMetrics {
                stream: stream.clone(),
                received_bytes_per_second: count("bitrate") / 8,
                packets_received: count("packets-received"),
                packets_lost: session.get::<i64>("packets-lost").unwrap_or(0).max(0) as u64,
                nacks_sent: count("nack-count"),
                keyframe_requests: count("keyframe-requests"),
                jitter_seconds: session.get::<f64>("jitter").unwrap_or(0.0),
                recording_frames: recorded.iter().find(|(s, _)| *s == src).map_or(0, |(_, frames)| *frames),
            });
        }
        let analysis = self.analysis.lock().unwrap().clone();
        let viewers = self
            .args
            .streams
            .iter()
            .flat_map(|s| [viewing::source_name(s), viewing::processed_name(s)])
            .filter_map(|name| self.pipeline.by_name(&name))
            .map(|sink| sink.property::<gst::Structure>("stats").get::<gst::Array>("viewers").map_or(0, |a| a.len()))
            .sum::<usize>() as u64;
        Snapshot {
            sessions,
            viewers,
            http_responses: gstwhipsrc::server::responses(address),
            inference_seconds: analysis.inference_seconds,
            dropped_inferences: analysis.dropped_inferences,
        }
    }

    /// One line per live recording: a live line on a terminal, every 10 s otherwise.
    pub(super) fn print_progress(&self) {
        static TICKS: AtomicU64 = AtomicU64::new(0);
        let tick = TICKS.fetch_add(1, Ordering::Relaxed);
        let terminal = std::io::stdout().is_terminal();
        if !terminal && tick % 10 != 9 {
            return;
        }
        let state = self.state.lock().unwrap();
        for recording in state.live.values() {
            let stats = recording.src.property::<gst::Structure>("stats");
            let session = stats.get::<gst::Structure>("session").ok();
            let field = |name: &str| session.as_ref().and_then(|s| s.get::<u64>(name).ok()).unwrap_or(0);
            let lost = session.as_ref().and_then(|s| s.get::<i64>("packets-lost").ok()).unwrap_or(0);
            let layers = session.as_ref().map(|s| progress::layers_of(s)).unwrap_or_default();
            let line = format!(
                "{}: {}, {:.2} Mbit/s{}, {} frames, {} packets lost{}",
                recording.name,
                recording.summary,
                field("bitrate") as f64 / 1e6,
                progress::layers_text(&layers, recording.started.elapsed().as_secs_f64()),
                recording.frames.load(Ordering::Relaxed),
                lost,
                match &recording.snapshot_dir {
                    Some(_) => format!(", {} snapshots", recording.snapshots.load(Ordering::Relaxed)),
                    None => String::new(),
                }
            );
            if terminal {
                print!("\r\x1b[K{line}");
            } else {
                println!("{line}");
            }
        }
        let _ = std::io::stdout().flush();
    }
}
