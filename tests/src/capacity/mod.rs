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
//! The parts that decide are plain functions with their unit tests beside them, a module a job:
//! stages (the stage of a thread, the split of the CPU time), verdict (real time or not, the next
//! N to try), clip (the clip the publishers send); runner ([`run`]) does the IO: whipcast, the
//! publishers, the readings.

mod clip;
mod runner;
mod stages;
mod verdict;

pub use clip::{Codec, face_clip};
pub use runner::{Run, run};
pub use stages::{STAGES, Stage, StageCpu, split};
pub use verdict::{Counts, Session, Verdict, largest, next_n, verdict};

pub const FPS: f64 = 30.0;
/// A snapshot every this many frames (`--snapshot-every`).
pub const SNAPSHOT_EVERY: u64 = 30;
/// Share of the frames facemark must analyse.
pub const ANALYSED_SHARE: f64 = 0.9;
/// Share of the analysed frames in which facemark must find the face (the clip has one in every
/// frame; a frame analysed without it was analysed in vain).
pub const FACE_SHARE: f64 = 0.9;
