//! Which simulcast layer leaves on which pad (sans-IO). A publisher sending simulcast (OBS 32.1+,
//! browsers) sends one stream per layer, each with its own SSRC and its rid in the RID header
//! extension; webrtcbin gives each SSRC a pad in the order packets happen to arrive. The selector
//! takes the items (samples, packets) of every layer with the layer's rid and hands back what goes
//! out and on which output, the same whatever the arrival order:
//! - `All`: layer i of the offer's `a=simulcast` list on output i;
//! - `Best` / `Lowest`: one output, the layer with the most / fewest pixels (as soon as every
//!   layer's first frame told its size), or, where sizes are not known (RTP output) or a layer
//!   stays silent, the one that sent the most / fewest bytes within `window` of the first item.
//!   Until the choice is made the items are held, so the chosen layer's output starts with its
//!   first frame. With an analysis height, a second output carries the smallest layer at least
//!   that tall (the tallest when none is), chosen at the same moment: analysis runs on fewer
//!   pixels while the first output records the best layer.
//!
//! Where sizes are known, the choice follows the layers that are sending: a layer that starts
//! late and suits an output better (browsers add their upper layers as the bandwidth estimate
//! grows), or the output's layer stopping for `LAYER_STALL` (browsers drop upper layers when
//! bandwidth falls), moves the output to the better layer at that layer's next key frame, asked
//! for meanwhile (`key_frame_requests`). Each layer's times come from its own RTP clock anchored
//! at its own first arrival, so the layer switched to is re-timed to go on from the output's last
//! item as the wall clock says (`shift`): an output's times never go back.

use std::collections::VecDeque;
use std::time::Duration;

/// Items held per layer before the choice: past it the choice is made at once.
pub const MAX_HELD: usize = 4096;
/// A layer that sent nothing for this long no longer counts as sending.
pub const LAYER_STALL: Duration = Duration::from_millis(1500);
/// How often a key frame is asked of a layer that an output waits to switch to.
pub const KEY_FRAME_ASK_INTERVAL: Duration = Duration::from_secs(1);

/// The least step between an output's last item and the first of the layer switched to.
const MIN_STEP_NS: i64 = 1_000_000;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Which simulcast layers (RFC 8853) leave, and on how many outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// One output: the layer with the most pixels (else the most bytes).
    Best,
    /// One output: the layer with the fewest pixels (else the fewest bytes).
    Lowest,
    /// Every layer on its own output, in the order of the offer's `a=simulcast` list.
    All,
}

/// What the shell knows of one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemInfo {
    /// The item's size in bytes; ranks layers when their sizes are not known.
    pub bytes: usize,
    /// Width x height, where the item's caps say it.
    pub pixels: Option<u64>,
    /// The frame height in pixels, where the item's caps say it; picks the analysis output's layer.
    pub height: Option<u32>,
    /// The item starts a key frame (a layer can be switched to there).
    pub key: bool,
    /// The item's time, where known (an output's items never go back in time).
    pub pts: Option<Duration>,
}

#[derive(Debug)]
struct Layer<T> {
    held: VecDeque<(T, Option<Duration>)>,
    bytes: u64,
    pixels: Option<u64>,
    height: Option<u32>,
    seen: bool,
    /// When its last item came, and that item's time.
    last: Duration,
    last_pts: Option<Duration>,
}

/// Which layer suits an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    MostPixels,
    FewestPixels,
    /// The smallest layer at least this tall, else the tallest.
    AtLeast(u32),
}

/// One output of `Best` / `Lowest`: the layer it carries and the one it waits to switch to.
#[derive(Debug)]
struct Feed {
    goal: Goal,
    layer: usize,
    next: Option<usize>,
    /// What the output's items' times are moved by (ns): the layer's clock to the output's.
    shift: i64,
    /// The time of the output's last item (shifted).
    last_pts: Option<Duration>,
    /// The layer a key frame was last asked of, and when.
    asked: Option<(usize, Duration)>,
}

/// Sorts the items (samples, packets) of a simulcast publisher's layers onto outputs by
/// [`Choice`], holding them until the choice is made; see the module doc.
#[derive(Debug)]
pub struct LayerSelector<T> {
    choice: Choice,
    rids: Vec<String>,
    window: Duration,
    first_item: Option<Duration>,
    layers: Vec<Layer<T>>,
    /// Output 0, then the analysis output; empty until the choice is made.
    feeds: Vec<Feed>,
    /// The least height of the analysis output's layer (`Best`, `Lowest`).
    analysis_min_height: Option<u32>,
    /// Layers a key frame is wanted of, until taken.
    key_requests: Vec<usize>,
}

impl<T: Clone> LayerSelector<T> {
    /// A selector for the layers `rids`, in the offer's `a=simulcast` order; `Best` / `Lowest`
    /// choose by bytes once `window` has passed since the first item if the sizes are not all known.
    pub fn new(choice: Choice, rids: Vec<String>, window: Duration) -> Self {
        let layers = rids
            .iter()
            .map(|_| Layer {
                held: VecDeque::new(),
                bytes: 0,
                pixels: None,
                height: None,
                seen: false,
                last: Duration::ZERO,
                last_pts: None,
            })
            .collect();
        LayerSelector {
            choice,
            rids,
            window,
            first_item: None,
            layers,
            feeds: Vec::new(),
            analysis_min_height: None,
            key_requests: Vec::new(),
        }
    }

    /// Also feed an analysis output (index 1) with the smallest layer at least `min_height` tall.
    /// Not with `All`, where every layer has its output.
    pub fn with_analysis(mut self, min_height: u32) -> Self {
        if self.choice != Choice::All {
            self.analysis_min_height = Some(min_height);
        }
        self
    }

    /// The index of the analysis output, if there is one.
    pub fn analysis_output(&self) -> Option<usize> {
        self.analysis_min_height.map(|_| 1)
    }

    /// The layer the analysis output carries, once chosen.
    pub fn analysed(&self) -> Option<&str> {
        self.feeds.get(1).map(|f| self.rids[f.layer].as_str())
    }

    /// How many outputs the layers feed.
    pub fn outputs(&self) -> usize {
        if self.choice == Choice::All { self.rids.len() } else { 1 }
    }

    /// The rid that output `index` carries, once known (`All`: at once; otherwise once chosen).
    pub fn rid_of_output(&self, index: usize) -> Option<&str> {
        match self.choice {
            Choice::All => self.rids.get(index).map(String::as_str),
            _ => self.feeds.get(index).map(|f| self.rids[f.layer].as_str()),
        }
    }

    /// The layer the single output (`Best`, `Lowest`) carries, once chosen.
    pub fn chosen(&self) -> Option<&str> {
        self.rid_of_output(0).filter(|_| self.choice != Choice::All)
    }

    /// How much the times of output `index`'s items are to be moved (ns), from the layer's clock
    /// to the output's (0 until a switch).
    pub fn shift(&self, index: usize) -> i64 {
        self.feeds.get(index).map_or(0, |f| f.shift)
    }

    /// The rids of the layers whose key frame an output waits for (each asked at most once per
    /// `KEY_FRAME_ASK_INTERVAL`), taken: the shell sends them key-frame requests.
    pub fn key_frame_requests(&mut self) -> Vec<String> {
        let mut rids: Vec<String> = Vec::new();
        for i in self.key_requests.drain(..) {
            if !rids.contains(&self.rids[i]) {
                rids.push(self.rids[i].clone());
            }
        }
        rids
    }

    /// An item of layer `rid` at `now`: what goes out, in order, each with its output index.
    /// Items of a layer not offered, or not chosen, are dropped.
    pub fn push(&mut self, rid: &str, item: T, info: ItemInfo, now: Duration) -> Vec<(usize, T)> {
        let Some(index) = self.rids.iter().position(|r| r == rid) else { return Vec::new() };
        if self.choice == Choice::All {
            return vec![(index, item)];
        }
        // (At a switch the output's layer is another: its last item is still the one before.)
        self.seen(index, info, now);
        if !self.feeds.is_empty() {
            return self.route(index, item, info, now);
        }
        let first = *self.first_item.get_or_insert(now);
        let layer = &mut self.layers[index];
        layer.bytes += info.bytes as u64;
        layer.held.push_back((item, info.pts));
        let sizes_known = self.layers.iter().all(|l| l.pixels.is_some());
        let full = self.layers[index].held.len() >= MAX_HELD;
        if sizes_known || full || now.saturating_sub(first) >= self.window { self.choose() } else { Vec::new() }
    }

    fn seen(&mut self, index: usize, info: ItemInfo, now: Duration) {
        let layer = &mut self.layers[index];
        layer.seen = true;
        layer.last = now;
        layer.last_pts = info.pts.or(layer.last_pts);
        // The latest size: a browser scales its layers with the CPU and the bandwidth.
        layer.pixels = info.pixels.or(layer.pixels);
        layer.height = info.height.or(layer.height);
    }

    /// The sending layer (with a known size) that suits `goal` best; ties go to the layer listed
    /// first in the offer.
    fn target(&self, goal: Goal, now: Duration) -> Option<usize> {
        let sending = || {
            self.layers
                .iter()
                .enumerate()
                .filter(|(_, l)| l.seen && now.saturating_sub(l.last) < LAYER_STALL)
                .filter_map(|(i, l)| Some((i, l.pixels?, l.height.unwrap_or(0))))
        };
        let found = match goal {
            Goal::MostPixels => sending().max_by_key(|&(i, pixels, _)| (pixels, std::cmp::Reverse(i))),
            Goal::FewestPixels => sending().min_by_key(|&(i, pixels, _)| (pixels, i)),
            Goal::AtLeast(min) => sending()
                .filter(|&(_, _, h)| h >= min)
                .min_by_key(|&(i, _, h)| (h, i))
                .or_else(|| sending().max_by_key(|&(i, _, h)| (h, std::cmp::Reverse(i)))),
        };
        found.map(|(i, _, _)| i)
    }

    /// Where an item of layer `index` goes once the choice is made; an output waiting for this
    /// layer switches to it at a key frame.
    fn route(&mut self, index: usize, item: T, info: ItemInfo, now: Duration) -> Vec<(usize, T)> {
        let mut out = Vec::new();
        for k in 0..self.feeds.len() {
            // Only between layers of known size: without (RTP output) the first choice holds.
            let sized = self.layers[self.feeds[k].layer].pixels.is_some() && self.layers[index].pixels.is_some();
            let target = if sized { self.target(self.feeds[k].goal, now) } else { None };
            let feed = &mut self.feeds[k];
            feed.next = target.filter(|&t| t != feed.layer);
            if let Some(next) = feed.next {
                if index == next && info.key {
                    // Where the output's clock is now: its layer's last item, plus the time since.
                    let current = &self.layers[feed.layer];
                    if let (Some(pts), Some(last)) = (info.pts, current.last_pts) {
                        let expected = nanos(last) + feed.shift + nanos(now.saturating_sub(current.last));
                        let after_last = feed.last_pts.map_or(i64::MIN, |l| nanos(l) + MIN_STEP_NS);
                        feed.shift = expected.max(after_last) - nanos(pts);
                    }
                    feed.layer = next;
                    feed.next = None;
                } else if feed.asked.is_none_or(|(l, at)| l != next || now.saturating_sub(at) >= KEY_FRAME_ASK_INTERVAL)
                {
                    feed.asked = Some((next, now));
                    self.key_requests.push(next);
                }
            }
            if index == feed.layer {
                if let Some(pts) = info.pts {
                    feed.last_pts = Some(Duration::from_nanos((nanos(pts) + feed.shift).max(0) as u64));
                }
                out.push((k, item.clone()));
            }
        }
        out
    }

    fn choose(&mut self) -> Vec<(usize, T)> {
        let seen = || self.layers.iter().enumerate().filter(|(_, l)| l.seen);
        let by_pixels = seen().all(|(_, l)| l.pixels.is_some());
        let rank = |l: &Layer<T>| if by_pixels { l.pixels.unwrap_or(0) } else { l.bytes };
        // Ties go to the layer listed first in the offer.
        let (goal, chosen) = match self.choice {
            Choice::Best => (
                Goal::MostPixels,
                seen().fold(None, |best: Option<(usize, u64)>, (i, l)| match best {
                    Some((_, r)) if r >= rank(l) => best,
                    _ => Some((i, rank(l))),
                }),
            ),
            _ => (
                Goal::FewestPixels,
                seen().fold(None, |low: Option<(usize, u64)>, (i, l)| match low {
                    Some((_, r)) if r <= rank(l) => low,
                    _ => Some((i, rank(l))),
                }),
            ),
        };
        let Some((chosen, _)) = chosen else { return Vec::new() };
        let feed = |goal, layer| Feed { goal, layer, next: None, shift: 0, last_pts: None, asked: None };
        self.feeds.push(feed(goal, chosen));
        if let Some(min_height) = self.analysis_min_height {
            let heights: Vec<(usize, u32)> =
                self.layers.iter().enumerate().filter_map(|(i, l)| Some((i, l.height.filter(|_| l.seen)?))).collect();
            let tall_enough = heights.iter().filter(|(_, h)| *h >= min_height).min_by_key(|(_, h)| *h);
            let tallest = heights.iter().max_by_key(|(_, h)| *h);
            let analysed = tall_enough.or(tallest).map_or(chosen, |(i, _)| *i);
            self.feeds.push(feed(Goal::AtLeast(min_height), analysed));
        }
        let mut released = Vec::new();
        let mut layers: Vec<usize> = self.feeds.iter().map(|f| f.layer).collect();
        layers.dedup();
        for layer in layers {
            let outputs: Vec<usize> = (0..self.feeds.len()).filter(|&k| self.feeds[k].layer == layer).collect();
            for (item, pts) in std::mem::take(&mut self.layers[layer].held) {
                for &k in &outputs {
                    self.feeds[k].last_pts = pts.or(self.feeds[k].last_pts);
                    released.push((k, item.clone()));
                }
            }
        }
        for layer in &mut self.layers {
            layer.held.clear();
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(500);

    fn obs_layers() -> Vec<String> {
        ["0", "1", "2"].map(String::from).to_vec()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn sized(w: u64, h: u64) -> ItemInfo {
        ItemInfo { bytes: 1000, pixels: Some(w * h), height: Some(h as u32), ..ItemInfo::default() }
    }

    #[test]
    fn best_is_the_largest_layer_whatever_the_arrival_order() {
        let sizes = [("0", 1280, 720), ("1", 852, 480), ("2", 426, 240)];
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
            let mut out = Vec::new();
            for (n, &i) in order.iter().enumerate() {
                let (rid, w, h) = sizes[i];
                out.extend(s.push(rid, format!("{rid}-key"), sized(w, h), ms(n as u64)));
            }
            // Chosen once all three told their size; the held key frame of layer 0 goes out first.
            assert_eq!(s.chosen(), Some("0"), "{order:?}");
            assert_eq!(out, [(0, "0-key".to_string())]);
            assert_eq!(s.push("0", "0-next".into(), ItemInfo::default(), ms(40)), [(0, "0-next".to_string())]);
            assert!(s.push("2", "2-next".into(), ItemInfo::default(), ms(40)).is_empty());
            assert_eq!(s.rid_of_output(0), Some("0"));
        }
    }

    #[test]
    fn lowest_is_the_smallest_layer() {
        let mut s = LayerSelector::new(Choice::Lowest, obs_layers(), WINDOW);
        assert!(s.push("2", "a", sized(426, 240), ms(0)).is_empty());
        assert!(s.push("2", "b", ItemInfo::default(), ms(33)).is_empty());
        assert!(s.push("0", "c", sized(1280, 720), ms(34)).is_empty());
        assert_eq!(s.push("1", "d", sized(852, 480), ms(35)), [(0, "a"), (0, "b")]);
        assert_eq!(s.chosen(), Some("2"));
    }

    #[test]
    fn a_silent_layer_delays_the_choice_by_the_window_only() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        assert!(s.push("1", "a", sized(852, 480), ms(1000)).is_empty());
        assert!(s.push("2", "b", sized(426, 240), ms(1001)).is_empty());
        assert!(s.push("1", "c", ItemInfo::default(), ms(1400)).is_empty());
        // Layer 0 never came: at the window's end the best of those seen.
        assert_eq!(s.push("2", "d", ItemInfo::default(), ms(1500)), [(0, "a"), (0, "c")]);
        assert_eq!(s.chosen(), Some("1"));
    }

    /// A frame of `(w, h)` at `t` ms: its pts is its time.
    fn frame(w: u64, h: u64, key: bool, t: u64) -> ItemInfo {
        ItemInfo { key, pts: Some(ms(t)), ..sized(w, h) }
    }

    #[test]
    fn a_better_layer_that_starts_late_takes_over_at_its_key_frame() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        s.push("1", "1a", frame(852, 480, true, 0), ms(0));
        assert_eq!(s.push("2", "2a", frame(426, 240, true, 0), ms(600)), [(0, "1a")]);
        assert_eq!(s.chosen(), Some("1"));
        // Layer 0 turns up 3 s in with a delta frame (its key frame lost): 1 goes on, and a key
        // frame is asked of 0, once per interval.
        assert_eq!(s.push("0", "0a", frame(1280, 720, false, 3000), ms(3000)), []);
        assert_eq!(s.key_frame_requests(), ["0"]);
        assert_eq!(s.push("1", "1b", frame(852, 480, false, 3000), ms(3001)), [(0, "1b")]);
        assert!(s.key_frame_requests().is_empty());
        assert_eq!(s.push("1", "1c", frame(852, 480, false, 3033), ms(3034)), [(0, "1c")]);
        // Its key frame: from there on output 0 carries layer 0 only.
        assert_eq!(s.push("0", "0b", frame(1280, 720, true, 3066), ms(3066)), [(0, "0b")]);
        assert_eq!(s.chosen(), Some("0"));
        assert_eq!(s.push("1", "1d", frame(852, 480, false, 3066), ms(3067)), []);
        assert_eq!(s.push("0", "0c", frame(1280, 720, false, 3100), ms(3100)), [(0, "0c")]);
        assert!(s.key_frame_requests().is_empty());
    }

    #[test]
    fn when_the_chosen_layer_stops_the_next_best_takes_over_at_its_key_frame() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        s.push("0", "0a", frame(1280, 720, true, 0), ms(0));
        s.push("1", "1a", frame(852, 480, true, 0), ms(1));
        assert_eq!(s.push("2", "2a", frame(426, 240, true, 0), ms(2)), [(0, "0a")]);
        assert_eq!(s.push("0", "0b", frame(1280, 720, false, 1000), ms(1000)), [(0, "0b")]);
        // Layer 0 stops (a browser short of bandwidth); 1 and 2 go on.
        for t in (1033..2600).step_by(33) {
            assert_eq!(s.push("1", "1", frame(852, 480, false, t), ms(t)), []);
            assert_eq!(s.push("2", "2", frame(426, 240, false, t), ms(t)), []);
        }
        assert_eq!(s.key_frame_requests(), ["1"], "asked of the best layer still sending");
        // A key frame of layer 2 does not do: layer 1 is better.
        assert_eq!(s.push("2", "2k", frame(426, 240, true, 2610), ms(2610)), []);
        assert_eq!(s.push("1", "1k", frame(852, 480, true, 2610), ms(2611)), [(0, "1k")]);
        assert_eq!(s.chosen(), Some("1"));
        // Layer 0 comes back: at its key frame, output 0 is full size again.
        assert_eq!(s.push("0", "0k", frame(1280, 720, true, 4000), ms(4000)), [(0, "0k")]);
        assert_eq!(s.chosen(), Some("0"));
    }

    #[test]
    fn the_layer_switched_to_is_retimed_to_go_on_from_the_output() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        s.push("1", "1a", frame(852, 480, true, 1000), ms(1000));
        s.push("2", "2a", frame(426, 240, true, 1000), ms(1600));
        assert_eq!(s.push("1", "1b", frame(852, 480, false, 2000), ms(2000)), [(0, "1b")]);
        assert_eq!(s.shift(0), 0);
        // Layer 0's clock is 200 ms behind: its key frame, 10 ms after layer 1's last item,
        // goes out 10 ms after it.
        assert_eq!(s.push("0", "0a", frame(1280, 720, true, 1810), ms(2010)), [(0, "0a")]);
        assert_eq!(s.shift(0), 200_000_000);
        assert_eq!(s.push("0", "0b", frame(1280, 720, false, 1843), ms(2043)), [(0, "0b")]);
        // Back to layer 1 when 0 stops: layer 1's clock is 200 ms ahead of the output's now, and
        // the gap of silence is kept.
        for t in (2033..3700).step_by(33) {
            s.push("1", "1", frame(852, 480, false, t), ms(t));
        }
        assert_eq!(s.push("1", "1k", frame(852, 480, true, 3700), ms(3700)), [(0, "1k")]);
        assert_eq!(s.chosen(), Some("1"));
        // 1843 + 200 (the output's last) + 1657 since = 3700: layer 1's own clock again.
        assert_eq!(s.shift(0), 0);

        // A key frame whose time would come before the output's last item goes out just after it.
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        s.push("1", "1a", frame(852, 480, true, 1000), ms(1000));
        s.push("2", "2a", frame(426, 240, true, 1000), ms(1600));
        s.push("1", "1b", frame(852, 480, false, 2000), ms(1900));
        assert_eq!(s.push("0", "0a", frame(1280, 720, true, 500), ms(1800)), [(0, "0a")]);
        assert_eq!(s.shift(0), 1_501_000_000, "2000 ms + 1 ms");
    }

    #[test]
    fn without_sizes_the_first_choice_holds() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        let packet = |key| ItemInfo { bytes: 1000, key, ..ItemInfo::default() };
        s.push("1", 1, packet(true), ms(0));
        assert_eq!(s.push("1", 2, packet(false), ms(600)), [(0, 1), (0, 2)]);
        assert!(s.push("0", 3, packet(true), ms(3000)).is_empty());
        for t in 0..100 {
            assert!(s.push("0", 4, packet(true), ms(3000 + t * 33)).is_empty());
        }
        assert_eq!(s.chosen(), Some("1"));
        assert!(s.key_frame_requests().is_empty());
    }

    #[test]
    fn the_analysis_output_follows_the_layers_too() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW).with_analysis(360);
        s.push("0", "0a", frame(1280, 720, true, 0), ms(0));
        let mut out = s.push("2", "2a", frame(426, 240, true, 0), ms(600));
        out.sort();
        assert_eq!(out, [(0, "0a"), (1, "0a")]);
        assert_eq!((s.chosen(), s.analysed()), (Some("0"), Some("0")));
        // 852x480 turns up: tall enough and smaller, so analysis moves there; output 0 stays.
        assert_eq!(s.push("1", "1a", frame(852, 480, true, 1000), ms(1000)), [(1, "1a")]);
        assert_eq!((s.chosen(), s.analysed()), (Some("0"), Some("1")));
        assert_eq!(s.push("0", "0b", frame(1280, 720, false, 1000), ms(1001)), [(0, "0b")]);
    }

    #[test]
    fn without_sizes_the_layer_with_most_bytes_wins() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        let bytes = |n| ItemInfo { bytes: n, ..ItemInfo::default() };
        for t in 0..5 {
            assert!(s.push("2", t, bytes(300), ms(t * 100)).is_empty());
            assert!(s.push("0", 10 + t, bytes(1200), ms(t * 100)).is_empty());
            assert!(s.push("1", 20 + t, bytes(800), ms(t * 100)).is_empty());
        }
        let out = s.push("1", 25, bytes(800), ms(500));
        assert_eq!(s.chosen(), Some("0"));
        assert_eq!(out, (10..15).map(|i| (0, i)).collect::<Vec<_>>());
    }

    #[test]
    fn all_puts_each_layer_on_its_output_by_offer_order() {
        let mut s = LayerSelector::new(Choice::All, obs_layers(), WINDOW);
        assert_eq!(s.outputs(), 3);
        assert_eq!(s.push("2", "x", ItemInfo::default(), ms(0)), [(2, "x")]);
        assert_eq!(s.push("0", "y", ItemInfo::default(), ms(0)), [(0, "y")]);
        assert_eq!(s.rid_of_output(1), Some("1"));
        assert!(s.push("9", "z", ItemInfo::default(), ms(0)).is_empty(), "a rid not offered");
    }

    #[test]
    fn analysis_gets_the_smallest_layer_at_least_so_tall() {
        let sizes = [("0", 1280, 720), ("1", 852, 480), ("2", 426, 240)];
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW).with_analysis(360);
        assert_eq!(s.analysis_output(), Some(1));
        let mut out = Vec::new();
        for (n, (rid, w, h)) in sizes.into_iter().rev().enumerate() {
            out.extend(s.push(rid, format!("{rid}-key"), sized(w, h), ms(n as u64)));
        }
        assert_eq!((s.chosen(), s.analysed()), (Some("0"), Some("1")));
        out.sort();
        assert_eq!(out, [(0, "0-key".to_string()), (1, "1-key".to_string())]);
        assert_eq!(s.push("1", "1-next".into(), ItemInfo::default(), ms(40)), [(1, "1-next".to_string())]);
        assert!(s.push("2", "2-next".into(), ItemInfo::default(), ms(40)).is_empty());
        assert_eq!(s.rid_of_output(1), Some("1"));

        // No layer that tall: the tallest, which is also the recorded one (both outputs).
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW).with_analysis(1080);
        for (n, (rid, w, h)) in sizes.into_iter().enumerate() {
            s.push(rid, format!("{rid}-key"), sized(w, h), ms(n as u64));
        }
        assert_eq!(s.analysed(), Some("0"));
        assert_eq!(s.push("0", "x".into(), ItemInfo::default(), ms(40)), [(0, "x".to_string()), (1, "x".to_string())]);
        // With every layer on its own pad there is no analysis output.
        assert_eq!(
            LayerSelector::<u8>::new(Choice::All, obs_layers(), WINDOW).with_analysis(360).analysis_output(),
            None
        );
    }

    #[test]
    fn holding_is_bounded() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), Duration::from_secs(3600));
        for i in 0..MAX_HELD - 1 {
            assert!(s.push("1", i, ItemInfo { bytes: 1, ..ItemInfo::default() }, ms(0)).is_empty());
        }
        assert_eq!(s.push("1", MAX_HELD - 1, ItemInfo { bytes: 1, ..ItemInfo::default() }, ms(0)).len(), MAX_HELD);
        assert_eq!(s.chosen(), Some("1"));
    }
}
