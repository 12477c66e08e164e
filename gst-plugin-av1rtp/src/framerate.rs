//! Estimates a stream's frame rate from buffer timestamps when the bitstream does not say it.

/// How many frame intervals the estimate uses.
pub const INTERVALS: usize = 8;

/// Frame rates that streams really use; a measured rate within 2% of one is taken as that one.
const COMMON_RATES: [(i32, i32); 17] = [
    (5, 1),
    (10, 1),
    (12, 1),
    (15, 1),
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (20, 1),
    (48, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
    (90, 1),
    (100, 1),
    (120, 1),
];

/// Collects the intervals between increasing timestamps of one stream (a timestamp not after the
/// one before adds no interval); `default()` starts empty.
#[derive(Debug, Default)]
pub struct FramerateEstimator {
    last: Option<u64>,
    intervals: Vec<u64>,
}

impl FramerateEstimator {
    /// Adds a timestamp in nanoseconds; returns the estimate once enough intervals were seen.
    pub fn push(&mut self, pts_ns: u64) -> Option<(i32, i32)> {
        if let Some(last) = self.last.replace(pts_ns)
            && pts_ns > last
        {
            self.intervals.push(pts_ns - last);
        }
        (self.intervals.len() >= INTERVALS).then(|| self.estimate()).flatten()
    }

    /// The estimate from what was seen so far (at least one interval), as a fraction. The median
    /// interval is tried first (robust to start-up hiccups and gaps); when it is no common rate,
    /// the mean of the intervals near the median (jitter averages out).
    pub fn estimate(&self) -> Option<(i32, i32)> {
        let mut sorted = self.intervals.clone();
        sorted.sort_unstable();
        let median = *sorted.get(sorted.len() / 2)?;
        if let Some(rate) = snap_common(1e9 / median as f64) {
            return Some(rate);
        }
        let near: Vec<u64> = sorted.into_iter().filter(|i| i.abs_diff(median) <= median / 4).collect();
        let mean = near.iter().sum::<u64>() as f64 / near.len() as f64;
        Some(snap(1e9 / mean))
    }
}

/// The common rate nearest to `fps` if one is within 2%, else `fps` to a thousandth.
pub fn snap(fps: f64) -> (i32, i32) {
    snap_common(fps).unwrap_or_else(|| {
        let thousandths = (fps * 1000.0).round().clamp(1.0, f64::from(i32::MAX)) as i32;
        let g = gcd(thousandths, 1000);
        (thousandths / g, 1000 / g)
    })
}

/// The common rate within 2% of `fps` nearest to it.
fn snap_common(fps: f64) -> Option<(i32, i32)> {
    let rate = |(n, d): (i32, i32)| f64::from(n) / f64::from(d);
    COMMON_RATES
        .into_iter()
        .filter(|&r| (fps - rate(r)).abs() <= rate(r) * 0.02)
        .min_by(|&a, &b| (fps - rate(a)).abs().total_cmp(&(fps - rate(b)).abs()))
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snaps_to_common_rates() {
        assert_eq!(snap(20.1), (20, 1));
        assert_eq!(snap(29.97), (30000, 1001));
        assert_eq!(snap(30.0), (30, 1));
        assert_eq!(snap(7.5), (15, 2));
    }

    #[test]
    fn estimates_from_jittery_timestamps() {
        let mut est = FramerateEstimator::default();
        let mut result = None;
        // 20 fps with +-3 ms of jitter and one late frame.
        let jitter = [0i64, 3, -2, 1, -3, 2, 40, 0, 1];
        for (i, j) in jitter.iter().enumerate() {
            let pts = (i as i64 * 50_000_000 + j * 1_000_000) as u64;
            result = est.push(pts);
        }
        assert_eq!(result, Some((20, 1)));
    }

    #[test]
    fn needs_enough_intervals() {
        let mut est = FramerateEstimator::default();
        for i in 0..INTERVALS as u64 {
            assert_eq!(est.push(i * 33_333_333), None);
        }
        assert_eq!(est.estimate(), Some((30, 1)));
    }
}
