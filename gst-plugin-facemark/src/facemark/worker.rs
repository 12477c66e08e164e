//! The inference thread of `mode=latest`: frames go to it one at a time, results come back
//! with their storage, so the streaming thread never waits for the models.

use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::core::image::OwnedFrame;
use crate::core::tracker::{Config, Face, FaceMarker, Stats, copy_faces};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("facemark-worker", gst::DebugColorFlags::empty(), Some("facemark's inference thread"))
});

pub(super) type SharedMarker = Arc<Mutex<Option<FaceMarker>>>;

/// A frame for the worker thread.
pub(super) struct Job {
    pub(super) frame: OwnedFrame,
    /// Storage for the result, handed back in [`Done`].
    pub(super) faces: Vec<Face>,
    pub(super) config: Config,
    pub(super) reset: bool,
    pub(super) pts: Option<gst::ClockTime>,
}

/// The worker's answer to a [`Job`], handing its storage back.
pub(super) struct Done {
    pub(super) frame: OwnedFrame,
    pub(super) faces: Vec<Face>,
    pub(super) pts: Option<gst::ClockTime>,
    pub(super) stats: Stats,
    pub(super) error: Option<String>,
}

/// The inference thread of `mode=latest`: one job at a time, the newest frame's.
pub(super) struct Worker {
    pub(super) jobs: Option<mpsc::Sender<Job>>,
    pub(super) done: mpsc::Receiver<Done>,
    pub(super) thread: Option<JoinHandle<()>>,
    /// A job was sent and its answer not yet received.
    pub(super) busy: bool,
}

impl Worker {
    pub(super) fn spawn(marker: SharedMarker) -> std::io::Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new().name("facemark-infer".into()).spawn(move || {
            gst::debug!(CAT, "inference thread started");
            for mut job in job_rx {
                // A panic is caught inside (process_or_error): the lock is never poisoned.
                let (stats, error) = match marker.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    None => (Stats::default(), Some("the models are not loaded".into())),
                    Some(m) => {
                        if job.reset {
                            m.reset();
                        }
                        m.set_config(job.config);
                        let result = match job.frame.as_frame() {
                            Some(frame) => m.process_or_error(&frame).map(|()| copy_faces(&mut job.faces, m.faces())),
                            None => Ok(()),
                        };
                        (m.stats(), result.err())
                    }
                };
                let done = Done { frame: job.frame, faces: job.faces, pts: job.pts, stats, error };
                if done_tx.send(done).is_err() {
                    break;
                }
            }
            gst::debug!(CAT, "inference thread stopped");
        })?;
        Ok(Worker { jobs: Some(jobs), done, thread: Some(thread), busy: false })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job channel ends the thread after its current job.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
