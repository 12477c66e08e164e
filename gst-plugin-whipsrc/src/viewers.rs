//! What each viewer of a WHEP stream gets, as plain rules (sans-IO): a viewer starts at a key
//! frame (the last one's group of pictures replayed when it is at hand, else the next, asked for
//! upstream), a viewer that falls behind is skipped to the next key frame rather than holding
//! anyone up, key frames are asked for at a bounded rate, and viewers are admitted up to a limit.

use std::time::Duration;

/// How much of the current group of pictures is kept for viewers that join: past either bound
/// it is dropped and a joining viewer waits for (and asks for) the next key frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GopLimits {
    /// Most frames kept, the key frame included.
    pub frames: usize,
    /// Most bytes kept: the sum of the `size`s given to [`GopCache::push`].
    pub bytes: usize,
}

/// About 4 s at 30 fps, and 8 MB (4 s at 16 Mb/s).
pub const DEFAULT_GOP_LIMITS: GopLimits = GopLimits { frames: 120, bytes: 8 << 20 };

/// The frames since the last key frame, key frame first.
#[derive(Debug, Clone)]
pub struct GopCache<T> {
    frames: Vec<T>,
    bytes: usize,
    limits: GopLimits,
}

impl<T: Clone> GopCache<T> {
    /// An empty cache that keeps at most `limits`; it fills from the next key frame.
    pub fn new(limits: GopLimits) -> Self {
        Self { frames: Vec::new(), bytes: 0, limits }
    }

    /// Takes in one frame of the stream.
    pub fn push(&mut self, key: bool, size: usize, frame: &T) {
        if key {
            self.frames.clear();
            self.bytes = 0;
        } else if self.frames.is_empty() {
            // No key frame kept: nothing a viewer could start from.
            return;
        }
        if self.frames.len() + 1 > self.limits.frames || self.bytes + size > self.limits.bytes {
            self.frames.clear();
            self.bytes = 0;
            return;
        }
        self.frames.push(frame.clone());
        self.bytes += size;
    }

    /// What a viewer joining now can start with: a key frame and the frames after it.
    pub fn replay(&self) -> &[T] {
        &self.frames
    }
}

/// What to do with a frame for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the frame to the viewer.
    Send,
    /// Not sent: the viewer waits for a key frame.
    Skip,
    /// Not sent, and a key frame should be asked for upstream: the viewer fell behind (or joined
    /// with nothing to start from) and waits for one.
    SkipAndAskKey,
}

/// One viewer's view of one stream: whether it may be sent the next frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    waiting_for_key: bool,
}

impl Gate {
    /// A gate for a stream that starts anywhere (audio), or at a key frame (video).
    pub fn new(needs_key: bool) -> Self {
        Self { waiting_for_key: needs_key }
    }

    /// Whether the viewer waits for a key frame.
    pub fn waiting(&self) -> bool {
        self.waiting_for_key
    }

    /// A frame of the stream (`key`: it can be decoded alone; always true for audio), and
    /// whether the viewer's backlog is full.
    pub fn offer(&mut self, key: bool, backlog_full: bool) -> Verdict {
        if backlog_full {
            let asked = !self.waiting_for_key;
            self.waiting_for_key = true;
            return if asked { Verdict::SkipAndAskKey } else { Verdict::Skip };
        }
        if self.waiting_for_key && !key {
            return Verdict::Skip;
        }
        self.waiting_for_key = false;
        Verdict::Send
    }
}

/// Upstream key frame requests, at most one per interval however many viewers ask.
#[derive(Debug, Clone)]
pub struct KeyRequests {
    interval: Duration,
    last: Option<Duration>,
}

/// A key frame costs bits (and an encoder's quality for a moment): one request per half second
/// serves every viewer joining then.
pub const KEY_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

impl KeyRequests {
    /// A limiter that lets one request through per `interval` (the first at once).
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: None }
    }

    /// Whether a request asked for at `now` (time since any fixed origin) goes upstream.
    pub fn ask(&mut self, now: Duration) -> bool {
        match self.last {
            Some(last) if now.saturating_sub(last) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

impl Default for KeyRequests {
    fn default() -> Self {
        Self::new(KEY_REQUEST_INTERVAL)
    }
}

/// Whether one more viewer may join: `max` 0 is no limit.
pub fn admits(watching: usize, max: u32) -> bool {
    max == 0 || watching < max as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_holds_the_current_group_of_pictures_from_its_key_frame() {
        let mut cache = GopCache::new(GopLimits { frames: 4, bytes: 1000 });
        cache.push(false, 10, &0);
        assert!(cache.replay().is_empty(), "nothing before the first key frame");
        cache.push(true, 100, &1);
        cache.push(false, 10, &2);
        cache.push(false, 10, &3);
        assert_eq!(cache.replay(), [1, 2, 3]);
        cache.push(true, 100, &4);
        assert_eq!(cache.replay(), [4], "a key frame starts anew");
    }

    #[test]
    fn a_group_of_pictures_past_the_limits_is_not_kept() {
        let mut cache = GopCache::new(GopLimits { frames: 3, bytes: 1000 });
        for (i, key) in [true, false, false, false, false].into_iter().enumerate() {
            cache.push(key, 10, &i);
        }
        assert!(cache.replay().is_empty(), "a fourth frame is one too many");
        cache.push(true, 10, &9);
        assert_eq!(cache.replay(), [9]);
        let mut cache = GopCache::new(GopLimits { frames: 100, bytes: 250 });
        cache.push(true, 200, &1);
        cache.push(false, 100, &2);
        assert!(cache.replay().is_empty(), "too many bytes");
        cache.push(true, 300, &3);
        assert!(cache.replay().is_empty(), "a key frame alone past the bytes is not kept either");
    }

    #[test]
    fn a_video_viewer_starts_at_a_key_frame() {
        let mut gate = Gate::new(true);
        assert_eq!(gate.offer(false, false), Verdict::Skip);
        assert_eq!(gate.offer(true, false), Verdict::Send);
        assert_eq!(gate.offer(false, false), Verdict::Send);
        let mut audio = Gate::new(false);
        assert_eq!(audio.offer(true, false), Verdict::Send);
    }

    #[test]
    fn a_viewer_behind_skips_to_the_next_key_frame_and_asks_once() {
        let mut gate = Gate::new(true);
        gate.offer(true, false);
        assert_eq!(gate.offer(false, true), Verdict::SkipAndAskKey);
        assert_eq!(gate.offer(false, true), Verdict::Skip, "asked already");
        assert_eq!(gate.offer(false, false), Verdict::Skip, "caught up, but mid-GOP");
        assert!(gate.waiting());
        assert_eq!(gate.offer(true, false), Verdict::Send);
        assert!(!gate.waiting());
    }

    #[test]
    fn key_frames_are_asked_for_at_most_once_per_interval() {
        let mut requests = KeyRequests::new(Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert!(requests.ask(ms(1000)));
        assert!(!requests.ask(ms(1200)));
        assert!(!requests.ask(ms(1499)));
        assert!(requests.ask(ms(1500)));
        assert!(requests.ask(ms(5000)));
    }

    #[test]
    fn viewers_are_admitted_up_to_the_limit() {
        assert!(admits(1000, 0));
        assert!(admits(4, 5));
        assert!(!admits(5, 5));
    }
}
