//! Real time or not: a session's counters, the verdict on a run's sessions, and the search for
//! the largest N that is.

use std::time::Duration;

use super::{ANALYSED_SHARE, FACE_SHARE, FPS, SNAPSHOT_EVERY};

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
    pub(super) fn since(self, earlier: Counts) -> Counts {
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
pub(super) fn due(window: Duration) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
