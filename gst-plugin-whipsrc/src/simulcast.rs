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
//!   first frame; the choice holds for the session. With an analysis height, a second output
//!   carries the smallest layer at least that tall (the tallest when none is), chosen at the same
//!   moment: analysis runs on fewer pixels while the first output records the best layer.

use std::collections::VecDeque;
use std::time::Duration;

/// Items held per layer before the choice: past it the choice is made at once.
pub const MAX_HELD: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Best,
    Lowest,
    All,
}

/// What the shell knows of one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemInfo {
    pub bytes: usize,
    /// Width x height, where the item's caps say it.
    pub pixels: Option<u64>,
    pub height: Option<u32>,
}

#[derive(Debug)]
struct Layer<T> {
    held: VecDeque<T>,
    bytes: u64,
    pixels: Option<u64>,
    height: Option<u32>,
    seen: bool,
}

#[derive(Debug)]
pub struct LayerSelector<T> {
    choice: Choice,
    rids: Vec<String>,
    window: Duration,
    first_item: Option<Duration>,
    layers: Vec<Layer<T>>,
    chosen: Option<usize>,
    /// The least height of the analysis output's layer (`Best`, `Lowest`).
    analysis_min_height: Option<u32>,
    analysis: Option<usize>,
}

impl<T: Clone> LayerSelector<T> {
    pub fn new(choice: Choice, rids: Vec<String>, window: Duration) -> Self {
        let layers = rids
            .iter()
            .map(|_| Layer { held: VecDeque::new(), bytes: 0, pixels: None, height: None, seen: false })
            .collect();
        LayerSelector {
            choice,
            rids,
            window,
            first_item: None,
            layers,
            chosen: None,
            analysis_min_height: None,
            analysis: None,
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

    /// The layer chosen for the analysis output, once chosen.
    pub fn analysed(&self) -> Option<&str> {
        self.analysis.map(|i| self.rids[i].as_str())
    }

    /// How many outputs the layers feed.
    pub fn outputs(&self) -> usize {
        if self.choice == Choice::All { self.rids.len() } else { 1 }
    }

    /// The rid that output `index` carries, once known (`All`: at once; otherwise once chosen).
    pub fn rid_of_output(&self, index: usize) -> Option<&str> {
        match self.choice {
            Choice::All => self.rids.get(index).map(String::as_str),
            _ if index == 0 => self.chosen(),
            _ if Some(index) == self.analysis_output() => self.analysed(),
            _ => None,
        }
    }

    /// The layer chosen for the single output (`Best`, `Lowest`), once chosen.
    pub fn chosen(&self) -> Option<&str> {
        self.chosen.map(|i| self.rids[i].as_str())
    }

    /// An item of layer `rid` at `now`: what goes out, in order, each with its output index.
    /// Items of a layer not offered, or not chosen, are dropped.
    pub fn push(&mut self, rid: &str, item: T, info: ItemInfo, now: Duration) -> Vec<(usize, T)> {
        let Some(index) = self.rids.iter().position(|r| r == rid) else { return Vec::new() };
        if self.choice == Choice::All {
            return vec![(index, item)];
        }
        if self.chosen.is_some() {
            return self.route(index, item);
        }
        let first = *self.first_item.get_or_insert(now);
        let layer = &mut self.layers[index];
        layer.seen = true;
        layer.bytes += info.bytes as u64;
        layer.pixels = layer.pixels.or(info.pixels);
        layer.height = layer.height.or(info.height);
        layer.held.push_back(item);
        let sizes_known = self.layers.iter().all(|l| l.pixels.is_some());
        let full = self.layers[index].held.len() >= MAX_HELD;
        if sizes_known || full || now.saturating_sub(first) >= self.window { self.choose() } else { Vec::new() }
    }

    /// Where an item of layer `index` goes once the choice is made.
    fn route(&self, index: usize, item: T) -> Vec<(usize, T)> {
        match (Some(index) == self.chosen, Some(index) == self.analysis) {
            (true, true) => vec![(0, item.clone()), (1, item)],
            (true, false) => vec![(0, item)],
            (false, true) => vec![(1, item)],
            (false, false) => Vec::new(),
        }
    }

    fn choose(&mut self) -> Vec<(usize, T)> {
        let seen = || self.layers.iter().enumerate().filter(|(_, l)| l.seen);
        let by_pixels = seen().all(|(_, l)| l.pixels.is_some());
        let rank = |l: &Layer<T>| if by_pixels { l.pixels.unwrap_or(0) } else { l.bytes };
        // Ties go to the layer listed first in the offer.
        let chosen = match self.choice {
            Choice::Best => seen().fold(None, |best: Option<(usize, u64)>, (i, l)| match best {
                Some((_, r)) if r >= rank(l) => best,
                _ => Some((i, rank(l))),
            }),
            _ => seen().fold(None, |low: Option<(usize, u64)>, (i, l)| match low {
                Some((_, r)) if r <= rank(l) => low,
                _ => Some((i, rank(l))),
            }),
        };
        let Some((chosen, _)) = chosen else { return Vec::new() };
        self.chosen = Some(chosen);
        if let Some(min_height) = self.analysis_min_height {
            let heights: Vec<(usize, u32)> =
                self.layers.iter().enumerate().filter_map(|(i, l)| Some((i, l.height.filter(|_| l.seen)?))).collect();
            let tall_enough = heights.iter().filter(|(_, h)| *h >= min_height).min_by_key(|(_, h)| *h);
            let tallest = heights.iter().max_by_key(|(_, h)| *h);
            self.analysis = Some(tall_enough.or(tallest).map_or(chosen, |(i, _)| *i));
        }
        let mut released = Vec::new();
        let held = std::mem::take(&mut self.layers[chosen].held);
        for item in held {
            released.extend(self.route(chosen, item));
        }
        if let Some(analysis) = self.analysis.filter(|&a| a != chosen) {
            released.extend(std::mem::take(&mut self.layers[analysis].held).into_iter().map(|item| (1, item)));
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
        ItemInfo { bytes: 1000, pixels: Some(w * h), height: Some(h as u32) }
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
        // It keeps the choice when the silent layer turns up.
        assert!(s.push("0", "e", sized(1280, 720), ms(1600)).is_empty());
    }

    #[test]
    fn without_sizes_the_layer_with_most_bytes_wins() {
        let mut s = LayerSelector::new(Choice::Best, obs_layers(), WINDOW);
        let bytes = |n| ItemInfo { bytes: n, pixels: None, height: None };
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
            assert!(s.push("1", i, ItemInfo { bytes: 1, pixels: None, height: None }, ms(0)).is_empty());
        }
        assert_eq!(s.push("1", MAX_HELD - 1, ItemInfo { bytes: 1, pixels: None, height: None }, ms(0)).len(), MAX_HELD);
        assert_eq!(s.chosen(), Some("1"));
    }
}
