//! Timestamps from RTP time (sans-IO). webrtcbin's jitter buffer stamps packets with smoothed
//! arrival times, which jitter by milliseconds and, after a burst (a publisher whose encoder
//! started late, a network stall), give many frames one and the same time; parsers such as
//! h264parse then drop PTS that fall behind their own interpolated DTS, and muxers refuse the
//! result. A stream's packets are stamped instead with the running time of its first packet plus
//! the RTP time since then, so frames keep the sender's exact spacing. Where that disagrees with
//! the arrival times by more than [`MAX_DRIFT_NS`] the timeline is corrected, never backwards:
//! - behind the arrivals (a stall, a slow sender clock): it jumps forward to the arrival time;
//! - ahead of them (frames that came in a burst after the first one, a fast sender clock): each
//!   step is shortened by [`SLEW_DIVISOR`]-th until it is back within bounds;
//! - a jump of the sender's RTP clock (a restart): it goes on one frame after the latest PTS.
//!
//! Packets of one frame (one RTP timestamp) always share a PTS, and a PTS given once is never
//! given again to a later frame: a decoder or encoder downstream would otherwise see runs of
//! frames with one timestamp.

/// How far (ns) the RTP timeline may drift from the arrival times before it is corrected.
pub const MAX_DRIFT_NS: u64 = 500_000_000;
/// While ahead of the arrivals, a step of the RTP clock advances the PTS by (1 - 1/SLEW_DIVISOR)
/// of it: 1/8 brings a 30 fps stream back by about 4 ms per frame, 125 ms per second.
pub const SLEW_DIVISOR: i64 = 8;
/// The spacing assumed after a jump of the RTP clock, until a real step has been seen.
const DEFAULT_STEP_NS: i64 = 20_000_000;

/// One stream's timeline: PTS (ns, running time) for its packets from their RTP timestamps
/// (RFC 3550), anchored at the first packet's arrival and kept near the arrivals.
#[derive(Debug)]
pub struct RtpTimeline {
    clock_rate: u64,
    /// (extended RTP time, PTS) of the anchor packet.
    anchor: Option<(i64, i64)>,
    last_rtp: u32,
    extended: i64,
    /// The PTS given to the previous packet, and the latest PTS given so far (B-frames make their
    /// PTS go back and forth; a correction continues after the latest).
    last_pts: i64,
    max_pts: i64,
    /// The latest forward step within bounds (the frame or packet spacing), in ns.
    step_ns: i64,
}

impl RtpTimeline {
    /// A timeline for an RTP clock of `clock_rate` Hz (90000 for video; 0 counts as 1); the first
    /// packet anchors it.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: u64::from(clock_rate.max(1)),
            anchor: None,
            last_rtp: 0,
            extended: 0,
            last_pts: 0,
            max_pts: 0,
            step_ns: DEFAULT_STEP_NS,
        }
    }

    fn ns(&self, rtp_delta: i64) -> i64 {
        let ns = (i128::from(rtp_delta) * 1_000_000_000 / i128::from(self.clock_rate)) as i64;
        ns.clamp(-(i64::MAX / 4), i64::MAX / 4)
    }

    /// The PTS for a packet with RTP timestamp `rtp` that arrived stamped `arrival_ns`.
    pub fn pts(&mut self, rtp: u32, arrival_ns: u64) -> u64 {
        let arrival = arrival_ns.min(i64::MAX as u64 / 4) as i64;
        let Some((anchor_rtp, anchor_ns)) = self.anchor else {
            self.last_rtp = rtp;
            self.extended = 0;
            self.anchor = Some((0, arrival));
            (self.last_pts, self.max_pts) = (arrival, arrival);
            return arrival as u64;
        };
        let rtp_step = i64::from(rtp.wrapping_sub(self.last_rtp) as i32);
        self.last_rtp = rtp;
        self.extended += rtp_step;
        if rtp_step == 0 {
            return self.last_pts as u64;
        }
        let step = self.ns(rtp_step);
        let max_drift = MAX_DRIFT_NS as i64;
        let mut pts = anchor_ns + self.ns(self.extended - anchor_rtp);
        if step.abs() > max_drift {
            // The sender's RTP clock jumped: go on one frame after the latest PTS.
            pts = arrival.max(self.max_pts + self.step_ns);
            self.anchor = Some((self.extended, pts));
        } else if arrival - pts > max_drift {
            pts = arrival.max(self.max_pts + self.step_ns);
            self.anchor = Some((self.extended, pts));
        } else if pts - arrival > max_drift && step > 0 {
            pts = self.last_pts + step - step / SLEW_DIVISOR;
            self.anchor = Some((self.extended, pts));
        }
        if step > 0 {
            self.step_ns = step;
        }
        self.last_pts = pts;
        self.max_pts = self.max_pts.max(pts);
        pts.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: u32 = 3000; // 30 fps at 90 kHz
    const FRAME_NS: u64 = 33_333_333;

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
    fn a_jump_of_the_sender_clock_goes_on_after_the_latest_pts() {
        let mut t = RtpTimeline::new(48_000);
        t.pts(0, 1_000_000_000);
        assert_eq!(t.pts(960, 1_020_000_000), 1_020_000_000);
        // The sender jumped its RTP clock by an hour: one packet later, then its spacing again.
        assert_eq!(t.pts(48_000 * 3600, 1_041_000_000), 1_041_000_000);
        assert_eq!(t.pts(48_000 * 3600 + 960, 1_060_000_000), 1_061_000_000);
        // And back (a restart with a new random timestamp) while arrivals lag: still forward.
        assert_eq!(t.pts(5, 1_070_000_000), 1_081_000_000);
    }

    #[test]
    fn a_stall_jumps_forward_to_the_arrivals() {
        let mut t = RtpTimeline::new(90_000);
        t.pts(0, 1_000_000_000);
        // The sender's clock stood still for 2 s (frames one RTP step apart, arriving 2 s later).
        assert_eq!(t.pts(FRAME, 3_000_000_000), 3_000_000_000);
        assert_eq!(t.pts(2 * FRAME, 3_034_000_000), 3_000_000_000 + FRAME_NS);
    }

    /// What relayed AV1 showed: the publisher's first keyframe came at once, the next frames 0.7 s
    /// of RTP time later in a burst that the jitter buffer stamped with one time, then real time.
    /// Going back to the burst's arrival time gave the decoder a PTS it had already passed, and
    /// 16 frames came out of it with one timestamp.
    #[test]
    fn a_burst_stamped_with_one_time_keeps_every_frame_apart_and_converges() {
        let mut t = RtpTimeline::new(90_000);
        let mut previous = t.pts(99_009_730, 1_968_878_746);
        let burst_arrival = 2_585_724_613;
        let mut frames = Vec::new();
        for i in 0..200u32 {
            let rtp = 99_072_730 + i * FRAME;
            // 20 frames in the burst, then one every frame time after it.
            let arrival = burst_arrival + u64::from(i.saturating_sub(20)) * FRAME_NS;
            let pts = t.pts(rtp, arrival);
            assert!(pts > previous, "frame {i}: {pts} after {previous}");
            assert!(pts - previous >= FRAME_NS - FRAME_NS / 8 - 1, "frame {i}: step {}", pts - previous);
            frames.push((pts, arrival));
            previous = pts;
        }
        let (pts, arrival) = *frames.last().unwrap();
        assert!(pts.abs_diff(arrival) <= MAX_DRIFT_NS, "{pts} vs {arrival}");
    }

    #[test]
    fn b_frames_keep_their_order_in_time() {
        let mut t = RtpTimeline::new(90_000);
        let base = 1_000_000_000;
        // Transmission order I P B B: RTP time 0, 3, 1, 2 frames.
        let order = [0u32, 3, 1, 2];
        let pts: Vec<u64> =
            order.iter().enumerate().map(|(i, f)| t.pts(f * FRAME, base + i as u64 * FRAME_NS)).collect();
        assert_eq!(pts, order.map(|f| base + u64::from(f) * 100_000_000 / 3));
    }

    proptest! {
        /// Whatever the arrivals (jitter, bursts, stalls) and the frame spacing, a later RTP time
        /// gets a later PTS and a frame's packets one PTS.
        #[test]
        fn later_frames_get_later_pts(
            start in any::<u32>(),
            frames in proptest::collection::vec((0u32..3, 1u32..9000, 0u64..700_000_000), 1..300),
        ) {
            let mut t = RtpTimeline::new(90_000);
            let (mut rtp, mut arrival) = (start, 1_000_000_000u64);
            let mut previous = t.pts(rtp, arrival);
            for (packets, step, wait) in frames {
                rtp = rtp.wrapping_add(step);
                arrival += wait;
                let pts = t.pts(rtp, arrival);
                prop_assert!(pts > previous, "{pts} after {previous}");
                for _ in 0..packets {
                    prop_assert_eq!(t.pts(rtp, arrival + 1_000_000), pts);
                }
                previous = pts;
            }
        }
    }
}
