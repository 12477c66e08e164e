//! The element's streaming state: the counters behind `stats`, the caps' format, and the
//! `mode=latest` worker with the results it hands back.

use super::worker::{Done, Worker};
use crate::core::image::{OwnedFrame, PixelFormat};
use crate::core::tracker::{Face, Stats};

/// The counters behind the `stats` property.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Counters {
    pub(super) frames_in: u64,
    /// Frames handed to inference (inline, or to the worker).
    pub(super) inferences: u64,
    /// Frames that found the worker busy and went on with the newest finished result.
    pub(super) dropped: u64,
    pub(super) marker: Stats,
}

/// Streaming state, reset at every start.
#[derive(Default)]
pub(super) struct State {
    pub(super) format: Option<PixelFormat>,
    /// From the caps' framerate, when it has one.
    pub(super) frame_duration: Option<gst::ClockTime>,
    /// Whether upstream is live (asked once per caps, for `mode=auto`).
    pub(super) live: Option<bool>,
    pub(super) worker: Option<Worker>,
    /// The next job's frame copy and face storage (kept between jobs to reuse them).
    pub(super) spare_frame: Option<OwnedFrame>,
    pub(super) spare_faces: Vec<Face>,
    /// `mode=latest`: the newest finished result and the PTS of the frame it was found in.
    pub(super) latest: Vec<Face>,
    pub(super) latest_pts: Option<gst::ClockTime>,
    /// Forget tracked faces before the next inference (after a flush or a new stream).
    pub(super) reset_pending: bool,
    pub(super) counters: Counters,
}

impl State {
    /// Takes in a finished job's result.
    fn accept(&mut self, done: Done) -> Result<(), String> {
        if let Some(w) = self.worker.as_mut() {
            w.busy = false;
        }
        self.spare_frame = Some(done.frame);
        self.spare_faces = std::mem::replace(&mut self.latest, done.faces);
        self.latest_pts = done.pts;
        self.counters.marker = done.stats;
        done.error.map_or(Ok(()), Err)
    }

    /// Takes in the worker's answer if there is one, waiting for it up to `wait`.
    pub(super) fn poll(&mut self, wait: Option<std::time::Duration>) -> Result<(), String> {
        let Some(w) = self.worker.as_ref().filter(|w| w.busy) else {
            return Ok(());
        };
        let answer = match wait {
            Some(wait) => w.done.recv_timeout(wait).ok(),
            None => w.done.try_recv().ok(),
        };
        answer.map_or(Ok(()), |done| self.accept(done))
    }

    /// Waits for the job in flight, if any.
    pub(super) fn finish(&mut self) -> Result<(), String> {
        match self.worker.as_ref().filter(|w| w.busy) {
            Some(w) => match w.done.recv() {
                Ok(done) => self.accept(done),
                Err(_) => Err("the inference thread stopped".into()),
            },
            None => Ok(()),
        }
    }
}
