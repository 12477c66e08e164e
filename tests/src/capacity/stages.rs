//! Where whipcast's CPU goes: the stage of a thread by its name, and the split of the CPU time
//! between two readings of its threads by stage.

use std::time::Duration;

use crate::cpu::ThreadTime;

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
    /// `<queue>:src` (15 bytes at most); whipcast names its queues (app/src/recorder/queues.rs): `in-*`
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
}
