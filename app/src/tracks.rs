//! Which of a session's streams its file gets.
//!
//! A muxer writes its tracks once, when it starts, and before that waits for data on every pad
//! (mp4mux and webmmux both): a stream that was negotiated and never sends (a muted microphone,
//! OBS without an audio source) would hold the whole recording in its queue until the session
//! ends, and lose what the queue cannot hold. So each stream is held at its queue until every
//! stream has sent its first buffer, or until [`TRACKS_DEADLINE`] after the first one did: the
//! streams silent by then are left out of the file (their pads released before the muxer starts).
//! A stream whose RTP arrives but whose first frame has not come (a publisher starting mid-GOP,
//! as OBS does, sends its first frame at its next key frame) is waited for, up to
//! [`RECEIVING_DEADLINE`]: the others wait in their queues, and then upstream.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// How long after a session's first buffer its other streams may start and still be recorded
/// (publishers start audio and video within milliseconds of each other).
pub const TRACKS_DEADLINE: Duration = Duration::from_secs(1);
/// How long after a session's first buffer a stream whose RTP arrives may take to send its first
/// frame (OBS's key-frame interval is 2 s as recommended, more as configured).
pub const RECEIVING_DEADLINE: Duration = Duration::from_secs(10);
/// How often the held streams are looked at again while one is waited for.
const RECHECK: Duration = Duration::from_millis(250);

/// The decision, sans IO: time comes in as an argument.
#[derive(Debug)]
pub struct TrackGate {
    /// Streams without data yet.
    silent: BTreeSet<String>,
    /// Streams whose RTP arrives (as the source last said).
    receiving: BTreeSet<String>,
    first_data: Option<Duration>,
    decided: bool,
}

impl TrackGate {
    pub fn new(streams: impl IntoIterator<Item = String>) -> TrackGate {
        TrackGate {
            silent: streams.into_iter().collect(),
            receiving: BTreeSet::new(),
            first_data: None,
            decided: false,
        }
    }

    /// One more stream to wait for.
    pub fn add(&mut self, name: &str) {
        self.silent.insert(name.to_owned());
    }

    /// Stream `name` has data at `now`: once every stream has, the tracks are decided (none left
    /// out). The deadlines are `tick`'s, told first which streams receive.
    pub fn data(&mut self, name: &str, now: Duration) -> Option<Vec<String>> {
        if self.decided {
            return None;
        }
        self.silent.remove(name);
        self.first_data.get_or_insert(now);
        if self.silent.is_empty() { self.decide() } else { None }
    }

    /// The streams whose RTP arrives, frames or not yet.
    pub fn receiving(&mut self, names: impl IntoIterator<Item = String>) {
        self.receiving = names.into_iter().collect();
    }

    /// At `now`: once [`TRACKS_DEADLINE`] has passed since the first data, and no silent stream
    /// is receiving (or [`RECEIVING_DEADLINE`] has passed), the streams left out. (Not only on
    /// data: a held stream's queue may be full and take no more.)
    pub fn tick(&mut self, now: Duration) -> Option<Vec<String>> {
        let first = self.first_data?;
        let since = now.saturating_sub(first);
        if self.decided || since < TRACKS_DEADLINE {
            return None;
        }
        if since < RECEIVING_DEADLINE && self.silent.iter().any(|s| self.receiving.contains(s)) {
            return None;
        }
        self.decide()
    }

    /// Whether the decision is made.
    pub fn decided(&self) -> bool {
        self.decided
    }

    /// The session ends: the tracks are decided now (if none ever sent, none is left out: the
    /// muxer still needs its pads to finish).
    pub fn end(&mut self) -> Option<Vec<String>> {
        if self.decided {
            return None;
        }
        if self.first_data.is_none() {
            self.silent.clear();
        }
        self.decide()
    }

    fn decide(&mut self) -> Option<Vec<String>> {
        self.decided = true;
        Some(std::mem::take(&mut self.silent).into_iter().collect())
    }
}

/// A [`TrackGate`] on a recording: each stream held at its input queue until the decision; then
/// each stream in gets a muxer pad, each left out a fakesink. (A muxer pad released before the
/// start is no help: mp4mux keeps its track, without a sample description.)
#[derive(Clone)]
pub struct Gates(Arc<Mutex<Held>>);

struct Held {
    /// The recording's name, for what is said.
    recording: String,
    gate: TrackGate,
    started: Instant,
    bin: gst::Bin,
    mux: gst::Element,
    streams: Vec<Stream>,
    /// The source's streams whose RTP arrives.
    receiving: Box<dyn Fn() -> Vec<String> + Send>,
    /// Each stream's first buffer time (ns), and the streams left out once decided.
    first_pts: Vec<(String, u64)>,
    left_out: Option<Vec<String>>,
}

impl Held {
    fn zero(&self) -> Option<u64> {
        let left_out = self.left_out.as_ref()?;
        self.first_pts.iter().filter(|(name, _)| !left_out.contains(name)).map(|(_, pts)| *pts).min()
    }
}

struct Stream {
    name: String,
    /// The muxer's pad template prefix: "video" or "audio".
    track: &'static str,
    /// Where the stream leaves for the muxer.
    feed: gst::Pad,
    /// The input queue's src pad and the probe that holds it.
    held: Option<(gst::Pad, gst::PadProbeId)>,
}

impl Gates {
    /// `receiving` says which of the source's streams have RTP arriving.
    pub fn new(
        recording: &str,
        bin: &gst::Bin,
        mux: &gst::Element,
        receiving: impl Fn() -> Vec<String> + Send + 'static,
    ) -> Gates {
        Gates(Arc::new(Mutex::new(Held {
            recording: recording.to_owned(),
            gate: TrackGate::new([]),
            started: Instant::now(),
            bin: bin.clone(),
            mux: mux.clone(),
            streams: Vec::new(),
            receiving: Box::new(receiving),
            first_pts: Vec::new(),
            left_out: None,
        })))
    }

    /// The deadlines come whether or not more data does: the decision is looked at again after
    /// `after`, and every [`RECHECK`] while a receiving stream is waited for.
    fn check_later(&self, after: Duration) {
        let gates = self.clone();
        gst::glib::timeout_add_once(after, move || {
            let (decision, decided) = {
                let mut held = gates.0.lock().unwrap();
                let now = held.started.elapsed();
                let receiving = (held.receiving)();
                held.gate.receiving(receiving);
                let decision = held.gate.tick(now);
                (decision, held.gate.decided())
            };
            match decision {
                Some(left_out) => gates.apply(&left_out),
                None if !decided => gates.check_later(RECHECK),
                None => {}
            }
        });
    }

    /// Holds stream `name` (its input `queue`, whose data leaves for the muxer at `feed`) until the
    /// decision.
    pub fn hold(&self, name: &str, track: &'static str, queue: &gst::Element, feed: &gst::Pad) {
        let src = queue.static_pad("src").unwrap();
        let probe = src.add_probe(gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER, |_, _| gst::PadProbeReturn::Ok);
        {
            let mut held = self.0.lock().unwrap();
            held.gate.add(name);
            let held_at = probe.map(|probe| (src, probe));
            held.streams.push(Stream { name: name.to_owned(), track, feed: feed.clone(), held: held_at });
        }
        let (gates, name) = (self.clone(), name.to_owned());
        queue.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let pts = info.buffer().and_then(|b| b.dts_or_pts());
            let (decision, first) = {
                let mut held = gates.0.lock().unwrap();
                if let Some(pts) = pts
                    && !held.first_pts.iter().any(|(n, _)| *n == name)
                {
                    held.first_pts.push((name.clone(), pts.nseconds()));
                }
                let now = held.started.elapsed();
                let first = held.gate.first_data.is_none();
                (held.gate.data(&name, now), first)
            };
            if first && decision.is_none() {
                gates.check_later(TRACKS_DEADLINE);
            }
            match decision {
                Some(left_out) => gates.apply(&left_out),
                // Decided: this probe has no more work.
                None if gates.0.lock().unwrap().gate.decided => return gst::PadProbeReturn::Remove,
                None => {}
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// The session ends: whatever is still held is decided now (before its EOS goes through).
    pub fn end(&self) {
        let decision = self.0.lock().unwrap().gate.end();
        if let Some(left_out) = decision {
            self.apply(&left_out);
        }
    }

    /// Where the file's timeline starts, once the tracks are decided: the earliest first buffer
    /// of the streams in it, which each stream's pad to the muxer is offset by (so the file
    /// starts at zero, and its times are known here: the landmarks file is on them).
    pub fn zero(&self) -> Option<u64> {
        let held = self.0.lock().unwrap();
        held.left_out.as_ref()?;
        held.zero()
    }

    /// The first buffer time of stream `name` (ns), once the tracks are decided.
    pub fn first(&self, name: &str) -> Option<u64> {
        let held = self.0.lock().unwrap();
        held.left_out.as_ref()?;
        held.first_pts.iter().find(|(n, _)| n == name).map(|(_, pts)| *pts)
    }

    /// Links each stream in to a new muxer pad and each left out to a fakesink, then lets every
    /// stream through.
    fn apply(&self, left_out: &[String]) {
        let (recording, bin, mux, streams) = {
            let mut held = self.0.lock().unwrap();
            held.left_out = Some(left_out.to_vec());
            let zero = held.zero().unwrap_or(0);
            let streams: Vec<_> =
                held.streams.iter_mut().map(|s| (s.name.clone(), s.track, s.feed.clone(), s.held.take())).collect();
            for (_, _, feed, _) in &streams {
                // Every stream by the same amount: their times relative to each other stay.
                feed.set_offset(-i64::try_from(zero).unwrap_or(i64::MAX));
            }
            (held.recording.clone(), held.bin.clone(), held.mux.clone(), streams)
        };
        for (name, track, feed, _) in &streams {
            let linked = if left_out.contains(name) {
                Err(format!(
                    "it sent no frame within {} s of the first data ({} s with its RTP arriving)",
                    TRACKS_DEADLINE.as_secs(),
                    RECEIVING_DEADLINE.as_secs()
                ))
            } else {
                mux.request_pad_simple(&format!("{track}_%u"))
                    .ok_or_else(|| format!("the muxer takes no more {track}"))
                    .and_then(|pad| feed.link(&pad).map(|_| ()).map_err(|e| format!("{e:?}")))
            };
            if let Err(why) = linked {
                println!("{recording}: {name} is not recorded: {why}");
                // Its data, should it come, goes nowhere (an unlinked pad would stop the stream).
                if let Ok(drop) = gst::ElementFactory::make("fakesink")
                    .name(format!("left-out-{name}"))
                    .property("async", false)
                    .property("sync", false)
                    .build()
                    && bin.add(&drop).is_ok()
                {
                    let _ = drop.sync_state_with_parent();
                    let _ = feed.link(&drop.static_pad("sink").unwrap());
                }
            }
        }
        for (_, _, _, held) in streams {
            if let Some((src, probe)) = held {
                src.remove_probe(probe);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn gate() -> TrackGate {
        TrackGate::new(["audio_0".to_string(), "video_0".to_string()])
    }

    #[test]
    fn every_stream_in_once_each_has_sent() {
        let mut gate = gate();
        assert_eq!(gate.data("video_0", ms(100)), None);
        assert_eq!(gate.data("video_0", ms(130)), None);
        assert_eq!(gate.data("audio_0", ms(140)), Some(vec![]));
        assert_eq!(gate.data("audio_0", ms(160)), None, "decided once");
        assert_eq!(gate.end(), None);
    }

    #[test]
    fn a_stream_silent_for_the_deadline_after_the_first_data_is_left_out() {
        let mut gate = gate();
        assert_eq!(gate.data("video_0", ms(100)), None);
        assert_eq!(gate.data("video_0", ms(100) + TRACKS_DEADLINE), None, "deadlines are tick's");
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE - ms(1)), None);
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE), Some(vec!["audio_0".to_string()]));
        // Audio coming later changes nothing: the file's tracks are written.
        assert_eq!(gate.data("audio_0", ms(100) + TRACKS_DEADLINE * 2), None);
    }

    #[test]
    fn a_stream_whose_rtp_arrives_is_waited_for_until_its_first_frame() {
        // OBS starts mid-GOP: Opus at once, its first video frame at the next key frame.
        let mut gate = gate();
        assert_eq!(gate.data("audio_0", ms(100)), None);
        gate.receiving(["audio_0".to_string(), "video_0".to_string()]);
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE), None);
        assert_eq!(gate.data("audio_0", ms(1900)), None);
        assert_eq!(gate.data("video_0", ms(2000)), Some(vec![]));

        // A stream whose RTP arrives but never makes a frame is left out at the longer deadline.
        let mut gate = self::gate();
        gate.receiving(["video_0".to_string()]);
        assert_eq!(gate.data("audio_0", ms(100)), None);
        assert_eq!(gate.tick(ms(100) + RECEIVING_DEADLINE - ms(1)), None);
        assert_eq!(gate.tick(ms(100) + RECEIVING_DEADLINE), Some(vec!["video_0".to_string()]));

        // Only the silent streams that receive are waited for.
        let mut gate = self::gate();
        gate.receiving(["audio_0".to_string()]);
        assert_eq!(gate.data("audio_0", ms(100)), None);
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE), Some(vec!["video_0".to_string()]));
    }

    #[test]
    fn the_deadline_comes_without_more_data() {
        let mut gate = gate();
        assert_eq!(gate.tick(ms(5000)), None, "no data yet: no deadline");
        assert_eq!(gate.data("video_0", ms(100)), None);
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE - ms(1)), None);
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE), Some(vec!["audio_0".to_string()]));
        assert_eq!(gate.tick(ms(100) + TRACKS_DEADLINE * 2), None, "decided once");
    }

    #[test]
    fn a_session_ending_before_the_deadline_leaves_out_what_never_came() {
        let mut gate = gate();
        assert_eq!(gate.data("video_0", ms(100)), None);
        assert_eq!(gate.end(), Some(vec!["audio_0".to_string()]));
    }

    #[test]
    fn a_session_without_any_data_leaves_nothing_out() {
        let mut gate = gate();
        assert_eq!(gate.end(), Some(vec![]));
        assert_eq!(gate.end(), None);
    }
}
