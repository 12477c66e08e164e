//! Timestamps from RTP time (sans-IO). webrtcbin's jitter buffer stamps packets with smoothed
//! arrival times, which jitter by milliseconds; parsers such as h264parse then drop PTS that
//! fall behind their own interpolated DTS, and muxers refuse the result. A stream's packets are
//! stamped instead with the running time of its first packet plus the RTP time since then,
//! re-anchored when that drifts more than [`MAX_DRIFT_NS`] from the arrival times (sender clock
//! drift, a sender restart).

pub const MAX_DRIFT_NS: u64 = 500_000_000;

#[derive(Debug)]
pub struct RtpTimeline {
    clock_rate: u64,
    /// (extended RTP time, PTS) of the anchor packet.
    anchor: Option<(i64, u64)>,
    last_rtp: u32,
    extended: i64,
}

impl RtpTimeline {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate: u64::from(clock_rate.max(1)), anchor: None, last_rtp: 0, extended: 0 }
    }

    /// The PTS for a packet with RTP timestamp `rtp` that arrived stamped `arrival_ns`.
    pub fn pts(&mut self, rtp: u32, arrival_ns: u64) -> u64 {
        if self.anchor.is_none() {
            self.last_rtp = rtp;
            self.extended = 0;
        }
        self.extended += i64::from(rtp.wrapping_sub(self.last_rtp) as i32);
        self.last_rtp = rtp;
        let (anchor_rtp, anchor_ns) = *self.anchor.get_or_insert((self.extended, arrival_ns));
        let delta = self.extended - anchor_rtp;
        let offset = (delta.unsigned_abs() as u128 * 1_000_000_000 / u128::from(self.clock_rate)) as u64;
        let pts = if delta >= 0 { anchor_ns.saturating_add(offset) } else { anchor_ns.saturating_sub(offset) };
        if pts.abs_diff(arrival_ns) > MAX_DRIFT_NS {
            self.anchor = Some((self.extended, arrival_ns));
            return arrival_ns;
        }
        pts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittery_arrivals_give_exact_spacing() {
        let mut t = RtpTimeline::new(90_000);
        let jitter = [0i64, 4, -3, 7, -1, 2];
        let pts: Vec<u64> = jitter
            .iter()
            .enumerate()
            .map(|(i, j)| t.pts(1000 + 3000 * i as u32, (2_000_000_000 + i as i64 * 33_333_333 + j * 1_000_000) as u64))
            .collect();
        for (i, p) in pts.iter().enumerate() {
            assert_eq!(*p, 2_000_000_000 + i as u64 * 100_000_000 / 3);
        }
    }

    #[test]
    fn packets_of_one_frame_share_a_pts_and_wraparound_is_followed() {
        let mut t = RtpTimeline::new(90_000);
        let a = t.pts(u32::MAX - 1499, 1_000_000_000);
        assert_eq!(t.pts(u32::MAX - 1499, 1_001_000_000), a);
        assert_eq!(t.pts(1500, 1_033_000_000), a + 33_333_333);
    }

    #[test]
    fn drift_or_a_jump_reanchors() {
        let mut t = RtpTimeline::new(48_000);
        t.pts(0, 1_000_000_000);
        // The sender jumped its RTP clock by an hour: follow the arrival time again.
        assert_eq!(t.pts(48_000 * 3600, 1_020_000_000), 1_020_000_000);
        assert_eq!(t.pts(48_000 * 3600 + 960, 1_041_000_000), 1_040_000_000);
    }
}
