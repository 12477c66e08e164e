//! Which RTP video frames may reach a depayloader: the sans-IO core of `rtpframegate`.
//!
//! After a loss that NACK could not repair, a decoder given what is left of a frame (or a frame
//! that refers to a lost one) shows corrupt pictures, and a muxer records them. AV1's depayloader
//! drops such frames itself; H.264, H.265, VP8 and VP9 get the same from this gate: it holds each
//! frame's packets until the frame is complete (contiguous sequence numbers from a packet that
//! begins the frame to the one with the marker bit) and lets it through only while the stream is
//! intact since a key frame. After damage it drops everything up to the next complete key frame
//! and asks for one (rate-limited; the caller turns that into a PLI).

use std::time::Duration;

/// The payload formats the gate reads (only their first bytes: where a frame starts, key frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264 as RTP payload (RFC 6184): single NAL unit, STAP-A and FU-A packets.
    H264,
    /// H.265 as RTP payload (RFC 7798): single NAL unit, AP and FU packets.
    H265,
    /// VP8 as RTP payload (RFC 7741).
    Vp8,
    /// VP9 as RTP payload (RFC 9628).
    Vp9,
}

impl Codec {
    /// The codec of an RTP `encoding-name` the gate knows.
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "H264" => Some(Codec::H264),
            "H265" => Some(Codec::H265),
            "VP8" => Some(Codec::Vp8),
            "VP9" => Some(Codec::Vp9),
            _ => None,
        }
    }

    /// Whether this packet, as the first of a frame, begins it (the frame's head was not lost).
    fn begins_frame(self, payload: &[u8]) -> bool {
        match self {
            Codec::H264 => first_nal_begins(h264_nal_heads(payload), h264_slice),
            Codec::H265 => first_nal_begins(h265_nal_heads(payload), h265_slice),
            // S=1 and partition 0.
            Codec::Vp8 => payload.first().is_some_and(|&b| b & 0x10 != 0 && b & 0x07 == 0),
            // B (beginning of a frame).
            Codec::Vp9 => payload.first().is_some_and(|&b| b & 0x08 != 0),
        }
    }

    /// Whether this packet, as the first of a frame right after a loss, surely begins it: what
    /// was lost cannot have been the frame's own parameter sets (a new SPS after a resolution
    /// change, say) when the packet starts with them, or with an access unit delimiter.
    fn surely_begins_frame(self, payload: &[u8]) -> bool {
        let first = |t: Option<(u8, Option<u8>)>, types: [u8; 2]| t.is_some_and(|(t, _)| types.contains(&t));
        self.begins_frame(payload)
            && match self {
                Codec::H264 => first(h264_nal_heads(payload).next(), [7, 9]),
                Codec::H265 => first(h265_nal_heads(payload).next(), [32, 35]),
                // The key frame header carries everything (no separate parameter sets).
                Codec::Vp8 | Codec::Vp9 => true,
            }
    }

    /// Whether the first slice that starts in this packet begins the picture (`None`: no slice
    /// starts here). A frame's first slice must: a key frame sent as two slices, each behind its
    /// own SPS and PPS, whose first slice was lost looks like a whole frame from its second SPS.
    fn first_slice_begins_picture(self, payload: &[u8]) -> Option<bool> {
        match self {
            Codec::H264 => first_slice_begins(h264_nal_heads(payload), h264_slice),
            Codec::H265 => first_slice_begins(h265_nal_heads(payload), h265_slice),
            Codec::Vp8 | Codec::Vp9 => None,
        }
    }

    /// Whether this packet carries (the start of) a key frame.
    fn carries_key(self, payload: &[u8]) -> bool {
        match self {
            Codec::H264 => h264_nal_heads(payload).any(|(t, _)| t == 5),
            Codec::H265 => h265_nal_heads(payload).any(|(t, _)| (16..=23).contains(&t)),
            Codec::Vp8 => vp8_key(payload),
            // B=1 and P=0: the frame does not refer to earlier pictures.
            Codec::Vp9 => payload.first().is_some_and(|&b| b & 0x08 != 0 && b & 0x40 == 0),
        }
    }
}

fn h264_slice(nal_type: u8) -> bool {
    (1..=5).contains(&nal_type)
}

fn h265_slice(nal_type: u8) -> bool {
    nal_type <= 31
}

/// A slice header's first byte begins the picture: H.264 first_mb_in_slice (ue(v)) is 0 when its
/// first bit is 1; H.265's first bit is first_slice_segment_in_pic_flag.
fn begins_picture(slice_header: Option<u8>) -> bool {
    slice_header.is_some_and(|b| b & 0x80 != 0)
}

/// Whether the first NAL unit starting in a packet can begin a frame: any but a slice that does
/// not begin its picture (no NAL unit starts in a packet that continues a fragment).
fn first_nal_begins(mut heads: impl Iterator<Item = (u8, Option<u8>)>, slice: fn(u8) -> bool) -> bool {
    heads.next().is_some_and(|(t, head)| !slice(t) || begins_picture(head))
}

/// Whether the first slice starting in a packet begins its picture (`None`: no slice starts).
fn first_slice_begins(mut heads: impl Iterator<Item = (u8, Option<u8>)>, slice: fn(u8) -> bool) -> Option<bool> {
    heads.find(|&(t, _)| slice(t)).map(|(_, head)| begins_picture(head))
}

/// H.264 (RFC 6184): each NAL unit that starts in the packet (single NAL, STAP-A, FU-A start), its
/// type and the byte after its header, without allocating (this runs for every packet).
fn h264_nal_heads(payload: &[u8]) -> impl Iterator<Item = (u8, Option<u8>)> + '_ {
    let first = payload.first().map(|b| b & 0x1F);
    let aggregate =
        (first == Some(24)).then(|| aggregated(&payload[1..]).map(|nal| (nal[0] & 0x1F, nal.get(1).copied())));
    let single = match first {
        Some(24) | None => None,
        Some(28) => payload.get(1).filter(|fu| *fu & 0x80 != 0).map(|fu| (fu & 0x1F, payload.get(2).copied())),
        Some(t) => Some((t, payload.get(1).copied())),
    };
    aggregate.into_iter().flatten().chain(single)
}

/// H.265 (RFC 7798): the same for single NAL, AP and FU start (2-byte NAL unit headers).
fn h265_nal_heads(payload: &[u8]) -> impl Iterator<Item = (u8, Option<u8>)> + '_ {
    let first = (payload.len() >= 2).then(|| (payload[0] >> 1) & 0x3F);
    let aggregate =
        (first == Some(48)).then(|| aggregated(&payload[2..]).map(|nal| ((nal[0] >> 1) & 0x3F, nal.get(2).copied())));
    let single = match first {
        Some(48) | None => None,
        Some(49) => payload.get(2).filter(|fu| *fu & 0x80 != 0).map(|fu| (fu & 0x3F, payload.get(3).copied())),
        Some(t) => Some((t, payload.get(2).copied())),
    };
    aggregate.into_iter().flatten().chain(single)
}

/// The NAL units of an aggregation packet's body (16-bit size before each).
fn aggregated(mut body: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let nal = body.get(2..2 + size).filter(|n| !n.is_empty())?;
        body = &body[2 + size..];
        Some(nal)
    })
}

/// VP8 (RFC 7741): a packet that begins partition 0 of a key frame (P bit of the payload header 0).
fn vp8_key(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else { return false };
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&ext) = payload.get(1) else { return false };
        at = 2;
        if ext & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            at += if payload.get(at).is_some_and(|b| b & 0x80 != 0) { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|b| b & 0x01 == 0)
}

/// One RTP packet, as the gate reads it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The RTP sequence number (RFC 3550); it wraps, and a gap in it is a loss.
    pub seq: u16,
    /// The RTP timestamp: the packets of one frame share it.
    pub timestamp: u32,
    /// The RTP marker bit: set on a frame's last packet.
    pub marker: bool,
    /// The payload without RTP header and padding; empty for padding-only packets.
    pub payload: &'a [u8],
}

/// The frame being received.
struct Frame<T> {
    timestamp: u32,
    items: Vec<T>,
    intact: bool,
    key: bool,
    /// A slice of it has started (the first must begin the picture).
    slice_seen: bool,
}

/// What a packet did.
#[derive(Debug)]
pub struct Outcome<T> {
    /// Whole frames to pass on, in order.
    pub release: Vec<T>,
    /// Packets dropped (of damaged frames, or while waiting for a key frame).
    pub dropped: Vec<T>,
    /// A key frame should be requested now.
    pub request_key_frame: bool,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Outcome { release: Vec::new(), dropped: Vec::new(), request_key_frame: false }
    }
}

/// Counters for the element's `stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GateStats {
    /// Frames passed on whole since the gate was made.
    pub frames_passed: u64,
    /// Frames dropped: damaged, or waiting for a key frame.
    pub frames_dropped: u64,
    /// Key frame requests made (at most one per request interval).
    pub key_frame_requests: u64,
    /// Gaps in the sequence numbers (each counts once, however many packets it lost).
    pub losses: u64,
}

/// Holds each frame until it is whole; passes frames only from a key frame on.
pub struct FrameGate<T> {
    codec: Codec,
    request_interval: Duration,
    last_seq: Option<u16>,
    frame: Option<Frame<T>>,
    /// Every frame since the last key frame passed whole.
    synced: bool,
    last_request: Option<Duration>,
    stats: GateStats,
}

impl<T> FrameGate<T> {
    /// A gate for `codec` that waits for a key frame first and asks for key frames at most once
    /// per `request_interval`.
    pub fn new(codec: Codec, request_interval: Duration) -> FrameGate<T> {
        FrameGate {
            codec,
            request_interval,
            last_seq: None,
            frame: None,
            synced: false,
            last_request: None,
            stats: GateStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// The payload format the gate reads.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The next packet (`item` is what is passed on or dropped with it), at time `now`.
    pub fn push(&mut self, packet: Packet<'_>, item: T, now: Duration) -> Outcome<T> {
        let mut out = Outcome::default();
        // The first packet seen is treated as following a loss: what came before is unknown.
        let step = match self.last_seq {
            None => None,
            Some(last) => {
                let step = packet.seq.wrapping_sub(last);
                if step == 0 || step > 0x8000 {
                    // A duplicate or a late packet (the jitter buffer gave up on it): too late.
                    out.dropped.push(item);
                    return out;
                }
                Some(step)
            }
        };
        let contiguous = step == Some(1);
        // One packet lost while a frame lacked its marker packet, and this packet starts another
        // frame: the lost one was that frame's last, so nothing before this packet is missing.
        let head_known =
            contiguous || (step == Some(2) && self.frame.as_ref().is_some_and(|f| f.timestamp != packet.timestamp));
        if !contiguous && self.last_seq.is_some() {
            self.stats.losses += 1;
            self.synced = false;
            if let Some(frame) = self.frame.as_mut() {
                frame.intact = false;
            }
        }
        self.last_seq = Some(packet.seq);
        if self.frame.as_ref().is_some_and(|f| f.timestamp != packet.timestamp) {
            // The frame ended without its marker packet.
            self.synced = false;
            self.close_frame(&mut out);
        }
        if packet.payload.is_empty() {
            // Padding only (browsers probe bandwidth so): nothing for the depayloader.
            out.dropped.push(item);
        } else {
            let codec = self.codec;
            let frame = self.frame.get_or_insert_with(|| Frame {
                timestamp: packet.timestamp,
                items: Vec::new(),
                intact: if head_known {
                    codec.begins_frame(packet.payload)
                } else {
                    codec.surely_begins_frame(packet.payload)
                },
                key: false,
                slice_seen: false,
            });
            if !frame.slice_seen
                && let Some(begins) = codec.first_slice_begins_picture(packet.payload)
            {
                frame.slice_seen = true;
                frame.intact &= begins;
            }
            frame.key |= codec.carries_key(packet.payload);
            frame.items.push(item);
        }
        if packet.marker {
            self.close_frame(&mut out);
        }
        if !self.synced && !out.dropped.is_empty() {
            out.request_key_frame = self.last_request.is_none_or(|t| now.saturating_sub(t) >= self.request_interval);
            if out.request_key_frame {
                self.last_request = Some(now);
                self.stats.key_frame_requests += 1;
            }
        }
        out
    }

    /// The current frame is over: released if whole and decodable, dropped otherwise.
    fn close_frame(&mut self, out: &mut Outcome<T>) {
        let Some(frame) = self.frame.take() else { return };
        if !frame.intact {
            self.synced = false;
        } else if frame.key {
            self.synced = true;
        }
        if self.synced {
            self.stats.frames_passed += 1;
            out.release.extend(frame.items);
        } else {
            self.stats.frames_dropped += 1;
            out.dropped.extend(frame.items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// H.264 packets of a frame (first_mb_in_slice = 0): a P slice in FU-A fragments, or a key
    /// frame as a STAP-A with SPS and PPS (and the IDR when it is one packet), then IDR fragments.
    fn h264_frame(key: bool, packets: usize) -> Vec<Vec<u8>> {
        const PARAMETER_SETS: [u8; 13] = [0x78, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 0, 4, 0x68, 0xCE, 0x3C, 0x80];
        let fu = |nal_type: u8, n: usize| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| {
                    let start = if i == 0 { 0x80 } else { 0 };
                    let end = if i + 1 == n { 0x40 } else { 0 };
                    vec![0x60 | 28, start | end | nal_type, 0x88, 0x84, 0x00]
                })
                .collect()
        };
        match (key, packets) {
            (false, n) => fu(1, n),
            (true, 1) => {
                let mut stap = PARAMETER_SETS.to_vec();
                stap.extend_from_slice(&[0, 2, 0x65, 0x88]);
                vec![stap]
            }
            (true, n) => std::iter::once(PARAMETER_SETS.to_vec()).chain(fu(5, n - 1)).collect(),
        }
    }

    /// Feeds frames of `fragments` packets, key every `gop`, skipping sequence numbers in `lost`.
    /// Returns which frames were released (by index).
    fn run(frames: usize, gop: usize, fragments: usize, lost: &[u16]) -> (Vec<usize>, GateStats) {
        let mut gate = FrameGate::new(Codec::H264, SECOND);
        let mut seq = 0u16;
        let mut released = Vec::new();
        for f in 0..frames {
            let packets = h264_frame(f % gop == 0, fragments);
            for (i, payload) in packets.iter().enumerate() {
                let p = Packet {
                    seq: seq.wrapping_add(65000),
                    timestamp: f as u32 * 3000,
                    marker: i + 1 == packets.len(),
                    payload,
                };
                seq += 1;
                if lost.contains(&(seq - 1)) {
                    continue;
                }
                let out = gate.push(p, f, Duration::from_millis(f as u64 * 33));
                released.extend(out.release);
            }
        }
        released.dedup();
        (released, gate.stats())
    }

    #[test]
    fn intact_stream_passes_every_frame_from_the_first_key_frame() {
        let (released, stats) = run(20, 5, 3, &[]);
        assert_eq!(released, (0..20).collect::<Vec<_>>());
        assert_eq!(stats.frames_passed, 20);
        assert_eq!(stats.key_frame_requests, 0);
    }

    #[test]
    fn a_loss_drops_frames_to_the_next_key_frame() {
        // Frame 7's second packet (seq 22) is lost: frames 7, 8, 9 go; 10 is a key frame.
        let (released, stats) = run(20, 5, 3, &[22]);
        let expected: Vec<usize> = (0..7).chain(10..20).collect();
        assert_eq!(released, expected);
        assert_eq!(stats.frames_dropped, 3);
        assert_eq!(stats.key_frame_requests, 1, "one request, then rate-limited");
    }

    #[test]
    fn a_lost_marker_or_head_damages_the_frame() {
        // Seq 2 is frame 0's marker packet; seq 15 is frame 5's (key) first packet.
        let (released, _) = run(12, 5, 3, &[2, 15]);
        assert_eq!(released, (10..12).collect::<Vec<_>>());
    }

    #[test]
    fn a_key_frame_right_after_a_loss_counts_only_if_it_surely_begins() {
        // Whole frames lost before a key frame: its IDR slice alone might lack a lost new SPS.
        let key = h264_frame(true, 1);
        let idr = [0x65u8, 0x88];
        let (sps, pps) = ([0x67u8, 0x42, 0xC0, 0x1E], [0x68u8, 0xCE, 0x3C, 0x80]);
        let mut gate = FrameGate::new(Codec::H264, SECOND);
        let first = gate.push(Packet { seq: 1, timestamp: 1, marker: true, payload: &idr }, 0, Duration::ZERO);
        assert!(first.release.is_empty(), "the first packet seen: what came before it is unknown");
        let out = gate.push(Packet { seq: 2, timestamp: 2, marker: true, payload: &key[0] }, 1, Duration::ZERO);
        assert_eq!(out.release, [1]);
        let out = gate.push(Packet { seq: 5, timestamp: 9, marker: true, payload: &idr }, 2, Duration::ZERO);
        assert!(out.release.is_empty(), "IDR after a gap, its parameter sets may be what was lost");
        let out = gate.push(Packet { seq: 9, timestamp: 12, marker: false, payload: &sps }, 3, Duration::ZERO);
        assert!(out.release.is_empty());
        gate.push(Packet { seq: 10, timestamp: 12, marker: false, payload: &pps }, 4, Duration::ZERO);
        let out = gate.push(Packet { seq: 11, timestamp: 12, marker: true, payload: &idr }, 5, Duration::ZERO);
        assert_eq!(out.release, [3, 4, 5], "a key frame that starts with its SPS after a gap");
    }

    #[test]
    fn a_key_frame_whose_first_slice_was_lost_is_damaged_even_behind_a_second_sps() {
        // x264 with two slices and rtph264pay's config-interval=-1: SPS, PPS, IDR slice (first_mb
        // 0), then SPS, PPS again and the second IDR slice (first_mb != 0: 0x00 starts its ue(v)).
        let (sps, pps) = ([0x67u8, 0x42, 0xC0, 0x1E], [0x68u8, 0xCE, 0x3C, 0x80]);
        let (slice0, slice1) = ([0x65u8, 0x88, 0x84], [0x7Cu8, 0x85, 0x00, 0xF0]);
        let frame: [&[u8]; 6] = [&sps, &pps, &slice0, &sps, &pps, &slice1];
        for lost in [vec![], vec![2u16, 3, 4]] {
            let mut gate = FrameGate::new(Codec::H264, SECOND);
            // A P frame before it, so that the key frame follows a known packet.
            let p = [0x41u8, 0x9A];
            gate.push(Packet { seq: 1, timestamp: 0, marker: true, payload: &p }, 0, Duration::ZERO);
            let mut released = Vec::new();
            for (i, payload) in frame.iter().enumerate() {
                let seq = 2 + i as u16;
                if lost.contains(&seq) {
                    continue;
                }
                let packet = Packet { seq, timestamp: 3000, marker: i == 5, payload };
                released.extend(gate.push(packet, seq, Duration::ZERO).release);
            }
            let expected: Vec<u16> = if lost.is_empty() { (2..8).collect() } else { Vec::new() };
            assert_eq!(released, expected, "lost {lost:?}");
        }
    }

    #[test]
    fn a_key_frame_after_the_lost_marker_packet_of_the_frame_before_counts() {
        // H.265: a key frame (VPS, IDR), then frame 1 whose marker packet (seq 4) is lost, then a
        // CRA in two fragments without parameter sets (what x265 makes when asked for a key frame).
        let vps = [32 << 1, 1, 0x0C, 0x01];
        let idr = [19 << 1, 1, 0x80, 0x00];
        let trail = [49 << 1, 1, 0x80 | 1, 0x80];
        let cra = [[49 << 1, 1, 0x80 | 21, 0x80], [49 << 1, 1, 0x40 | 21, 0x11]];
        for (lost, released) in [(1u16, vec![3, 4]), (2, vec![])] {
            let mut gate = FrameGate::new(Codec::H265, SECOND);
            let mut push = |seq, timestamp, marker, payload: &[u8], item| {
                gate.push(Packet { seq, timestamp, marker, payload }, item, Duration::ZERO).release
            };
            push(1, 1, false, &vps, 0);
            assert_eq!(push(2, 1, true, &idr, 0), [0, 0]);
            push(3, 2, false, &trail, 1);
            let seq = 4 + lost;
            let mut out = push(seq, 3, false, &cra[0], 3);
            out.extend(push(seq + 1, 3, true, &cra[1], 4));
            // With two lost, the second may have been the CRA's own parameter sets.
            assert_eq!(out, released, "{lost} packet(s) lost");
        }
    }

    #[test]
    fn starting_mid_gop_waits_for_a_key_frame_and_asks_for_one() {
        let mut gate = FrameGate::new(Codec::H264, SECOND);
        let p = h264_frame(false, 1);
        let out = gate.push(Packet { seq: 9, timestamp: 1, marker: true, payload: &p[0] }, 1, Duration::ZERO);
        assert!(out.release.is_empty() && out.dropped == [1] && out.request_key_frame);
        let out = gate.push(Packet { seq: 10, timestamp: 2, marker: true, payload: &p[0] }, 2, SECOND / 2);
        assert!(!out.request_key_frame, "rate-limited");
        let out = gate.push(Packet { seq: 11, timestamp: 3, marker: true, payload: &p[0] }, 3, SECOND);
        assert!(out.request_key_frame);
        let k = h264_frame(true, 1);
        let out = gate.push(Packet { seq: 12, timestamp: 4, marker: true, payload: &k[0] }, 4, SECOND);
        assert_eq!(out.release, [4]);
    }

    #[test]
    fn duplicates_and_padding_do_not_break_a_frame() {
        let mut gate = FrameGate::new(Codec::H264, SECOND);
        let k = h264_frame(true, 2);
        assert!(
            gate.push(Packet { seq: 1, timestamp: 7, marker: false, payload: &k[0] }, 1, Duration::ZERO)
                .release
                .is_empty()
        );
        let dup = gate.push(Packet { seq: 1, timestamp: 7, marker: false, payload: &k[0] }, 99, Duration::ZERO);
        assert_eq!(dup.dropped, [99]);
        let out = gate.push(Packet { seq: 2, timestamp: 7, marker: true, payload: &k[1] }, 2, Duration::ZERO);
        assert_eq!(out.release, [1, 2]);
        let pad = gate.push(Packet { seq: 3, timestamp: 7, marker: false, payload: &[] }, 3, Duration::ZERO);
        assert_eq!(pad.dropped, [3]);
        let p = h264_frame(false, 1);
        let out = gate.push(Packet { seq: 4, timestamp: 8, marker: true, payload: &p[0] }, 4, Duration::ZERO);
        assert_eq!(out.release, [4], "padding between frames is no loss");
    }

    #[test]
    fn frame_starts_and_key_frames_per_codec() {
        // H.264: STAP-A with SPS, PPS, then IDR in the next packet; a slice that is not the first.
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE];
        assert!(Codec::H264.begins_frame(&stap) && !Codec::H264.carries_key(&stap));
        assert!(Codec::H264.carries_key(&[0x65, 0x88]));
        assert!(!Codec::H264.begins_frame(&[0x41, 0x7A]), "first_mb_in_slice != 0");
        assert!(!Codec::H264.begins_frame(&[0x7C, 0x05, 0x88]), "FU-A continuation");
        // H.265: IDR_W_RADL (19) single NAL with first_slice_segment_in_pic_flag; FU of a CRA (21).
        assert!(Codec::H265.begins_frame(&[19 << 1, 1, 0x80]) && Codec::H265.carries_key(&[19 << 1, 1, 0x80]));
        assert!(Codec::H265.carries_key(&[49 << 1, 1, 0x80 | 21, 0x80]));
        assert!(!Codec::H265.begins_frame(&[49 << 1, 1, 21, 0x80]), "FU continuation");
        assert!(!Codec::H265.begins_frame(&[1 << 1, 1, 0x00]), "a later slice segment");
        assert!(Codec::H265.begins_frame(&[48 << 1, 1, 0, 3, 32 << 1, 1, 0x0C]), "AP starting with a VPS");
        // VP8: X=1, I=1 with a 15-bit picture id, then the payload header (P=0: key frame).
        let vp8_key_packet = [0x90, 0x80, 0x81, 0x23, 0x10];
        assert!(Codec::Vp8.begins_frame(&vp8_key_packet) && Codec::Vp8.carries_key(&vp8_key_packet));
        assert!(!Codec::Vp8.carries_key(&[0x90, 0x80, 0x81, 0x23, 0x11]), "P=1");
        assert!(!Codec::Vp8.begins_frame(&[0x80, 0x80, 0x12]), "S=0");
        // VP9: B=1 P=0 key; B=1 P=1 inter; B=0 continuation.
        assert!(Codec::Vp9.carries_key(&[0x88]) && !Codec::Vp9.carries_key(&[0xC8]));
        assert!(!Codec::Vp9.begins_frame(&[0x84]));
    }

    #[test]
    fn truncated_payloads_are_not_read_past_their_end() {
        for codec in [Codec::H264, Codec::H265, Codec::Vp8, Codec::Vp9] {
            for payload in [&[][..], &[0xFF], &[0x78, 0xFF], &[0x60, 0xFF, 0xFF], &[0x9C, 0xFF]] {
                let _ = (codec.begins_frame(payload), codec.carries_key(payload));
            }
        }
    }
}
