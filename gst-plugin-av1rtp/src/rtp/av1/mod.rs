//! The receiver side of the AOM "RTP Payload Format for AV1" (v1.0.0): aggregation header,
//! OBU elements, fragments, temporal-unit assembly and loss handling.
//!
//! Packets are kept (not copied) until their temporal unit is complete; the TU is then written
//! once into a single allocation: a temporal delimiter and every OBU with a minimal size field.

use crate::av1::frame::is_shown_key_frame;
use crate::av1::leb128;
use crate::av1::obu::{self, ObuHeader, obu_type};
use crate::av1::sequence::SequenceHeader;
use crate::rtp::packet::{RtpError, RtpHeader};

/// A temporal unit larger than this is treated as corrupt (bounds memory on hostile input).
pub const MAX_TU_BYTES: usize = 32 << 20;
/// As many packets as one TU may span.
pub const MAX_TU_PACKETS: usize = 1 << 15;
/// As many OBUs as one TU may hold (a real one has a handful: headers, tile groups, metadata).
/// Each costs bookkeeping beyond its bytes: unbounded, 32 MiB of 1-byte OBUs took 1.1 GB.
pub const MAX_TU_OBUS: usize = 1 << 16;
/// A sequence number this far behind the expected one is a restart, not a late packet.
const MAX_LATE: i16 = 1000;

const Z_CONTINUES: u8 = 0x80;
const Y_CONTINUED: u8 = 0x40;
const N_NEW_SEQUENCE: u8 = 0x08;

/// A complete temporal unit, ready to push.
#[derive(Debug)]
pub struct TemporalUnit<M> {
    /// Low-overhead bitstream: one temporal delimiter, then every OBU with a minimal size field.
    pub data: Vec<u8>,
    /// The RTP timestamp shared by the TU's packets (90 kHz clock).
    pub rtp_timestamp: u32,
    /// Holds a shown key frame (from the frame header; the N bit when there is none to read).
    pub keyframe: bool,
    /// The first TU after a loss, a drop or the start.
    pub discont: bool,
    /// What the caller attached to the TU's first packet (its PTS, say).
    pub meta: M,
}

/// What [`Depacketizer::push`] and [`Depacketizer::finish`] hand to their `emit` callback.
#[derive(Debug)]
pub enum Event<M> {
    /// A complete temporal unit.
    TemporalUnit(TemporalUnit<M>),
    /// Data was lost or a TU was dropped and the stream waits for a key frame: ask the sender.
    KeyframeWanted,
}

/// Counters since the depacketizer was created ([`Depacketizer::reset`] keeps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets whose RTP header parsed, stale ones included.
    pub packets: u64,
    /// Bytes of those packets, RTP headers included.
    pub bytes: u64,
    /// Packets missing from gaps in the sequence numbers (a sender restart counts none).
    pub packets_lost: u64,
    /// Packets dropped as duplicates or too late ([`PacketIssue::Stale`]).
    pub duplicates: u64,
    /// Packets whose RTP header did not parse (malformed AV1 payloads count as dropped TUs instead).
    pub malformed_packets: u64,
    /// Temporal units emitted.
    pub temporal_units: u64,
    /// Temporal units dropped: incomplete, malformed, empty, or not a key frame while waiting for one.
    pub dropped_temporal_units: u64,
}

/// Why a packet was not used; none of these stop the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketIssue {
    /// The RTP header does not parse; the packet is ignored.
    Rtp(RtpError),
    /// A sequence number at or behind the last one: a duplicate or a packet too late to use.
    Stale,
    /// The AV1 payload is malformed; the TU it belongs to is dropped.
    Malformed(&'static str),
}

#[derive(Clone, Copy)]
struct Segment {
    packet: u32,
    start: u32,
    end: u32,
}

#[derive(Clone, Copy)]
struct ObuElement {
    /// Range of `Depacketizer::segments` holding this OBU's bytes.
    first_segment: u32,
    segments: u32,
    len: usize,
}

/// One OBU as it will be written: the parsed header, where its payload starts within the
/// element bytes, and the payload length.
#[derive(Clone, Copy)]
struct PlannedObu {
    element: usize,
    header: ObuHeader,
    skip: usize,
    payload_len: usize,
}

struct OpenTu<M> {
    timestamp: u32,
    meta: M,
    new_sequence: bool,
    broken: bool,
    fragment_open: bool,
    bytes: usize,
}

/// Reassembles the temporal units of one AV1 RTP stream. `P` holds a packet's bytes and is kept
/// until its TU is written; `M` is what the caller attaches to a TU (taken from its first packet).
pub struct Depacketizer<P, M> {
    wait_for_keyframe: bool,
    expected_seq: Option<u16>,
    waiting_for_keyframe: bool,
    discont: bool,
    tu: Option<OpenTu<M>>,
    packets: Vec<P>,
    segments: Vec<Segment>,
    elements: Vec<ObuElement>,
    plan: Vec<PlannedObu>,
    sequence_header: Option<SequenceHeader>,
    stats: Stats,
}

impl<P: AsRef<[u8]>, M> Depacketizer<P, M> {
    /// With `wait_for_keyframe`, TUs are dropped at the start and after a loss or a dropped TU until
    /// one holds a key frame and a sequence header is known.
    pub fn new(wait_for_keyframe: bool) -> Self {
        Self {
            wait_for_keyframe,
            expected_seq: None,
            waiting_for_keyframe: wait_for_keyframe,
            discont: true,
            tu: None,
            packets: Vec::new(),
            segments: Vec::new(),
            elements: Vec::new(),
            plan: Vec::new(),
            sequence_header: None,
            stats: Stats::default(),
        }
    }

    /// Changes `wait_for_keyframe`; turning it off ends a wait in progress.
    pub fn set_wait_for_keyframe(&mut self, wait: bool) {
        self.wait_for_keyframe = wait;
        if !wait {
            self.waiting_for_keyframe = false;
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Forgets everything in flight (after a flush or a new stream); the next TU is a DISCONT
    /// and, with `wait_for_keyframe`, must be a key frame.
    pub fn reset(&mut self) {
        self.expected_seq = None;
        self.clear_tu();
        self.discont = true;
        self.waiting_for_keyframe = self.wait_for_keyframe;
    }

    /// Ends the stream: a TU still open is pushed if it is whole (its marker may be missing).
    pub fn finish(&mut self, mut emit: impl FnMut(Event<M>)) {
        self.close_tu(&mut emit);
    }

    /// Takes one RTP packet. Whatever it completes is given to `emit`.
    pub fn push(&mut self, packet: P, meta: M, mut emit: impl FnMut(Event<M>)) -> Result<(), PacketIssue> {
        let header = RtpHeader::parse(packet.as_ref()).map_err(|e| {
            self.stats.malformed_packets += 1;
            PacketIssue::Rtp(e)
        })?;
        self.stats.packets += 1;
        self.stats.bytes += packet.as_ref().len() as u64;

        let mut lost = false;
        if let Some(expected) = self.expected_seq {
            let delta = header.sequence_number.wrapping_sub(expected) as i16;
            if delta < 0 && delta > -MAX_LATE {
                self.stats.duplicates += 1;
                return Err(PacketIssue::Stale);
            }
            if delta != 0 {
                // A jump far backwards is a restarted sender: nothing to count, but still a gap.
                lost = true;
                self.stats.packets_lost += u64::try_from(delta).unwrap_or(0);
            }
        }
        self.expected_seq = Some(header.sequence_number.wrapping_add(1));

        // Padding-only packets (Chromium's bandwidth probes) hold a sequence number, nothing else;
        // their timestamp says nothing about where a TU ends.
        if header.payload.is_empty() {
            if lost {
                self.note_loss(&mut emit);
            }
            return Ok(());
        }

        if self.tu.as_ref().is_some_and(|tu| tu.timestamp != header.timestamp) {
            if lost {
                // The missing packets may have ended this TU: it cannot be trusted.
                self.tu.as_mut().unwrap().broken = true;
            }
            self.close_tu(&mut emit);
        }
        if lost {
            self.note_loss(&mut emit);
        }

        let result = self.add_packet(packet, &header, meta);
        if header.marker {
            self.close_tu(&mut emit);
        }
        result
    }

    fn note_loss(&mut self, emit: &mut impl FnMut(Event<M>)) {
        if let Some(tu) = self.tu.as_mut() {
            tu.broken = true;
        }
        self.discont = true;
        if self.wait_for_keyframe {
            if !self.waiting_for_keyframe {
                emit(Event::KeyframeWanted);
            }
            self.waiting_for_keyframe = true;
        }
    }

    fn add_packet(&mut self, packet: P, header: &RtpHeader, meta: M) -> Result<(), PacketIssue> {
        let data = packet.as_ref();
        let payload = &data[header.payload.clone()];
        let aggregation = payload[0];
        let tu = self.tu.get_or_insert_with(|| OpenTu {
            timestamp: header.timestamp,
            meta,
            new_sequence: aggregation & N_NEW_SEQUENCE != 0,
            broken: false,
            fragment_open: false,
            bytes: 0,
        });
        if tu.broken {
            return Ok(());
        }
        if self.packets.len() >= MAX_TU_PACKETS || tu.bytes + payload.len() > MAX_TU_BYTES {
            tu.broken = true;
            return Err(PacketIssue::Malformed("temporal unit too large"));
        }

        let continues = aggregation & Z_CONTINUES != 0;
        if continues != tu.fragment_open {
            // Z=1 with nothing to continue (its start was lost or never sent), or Z=0 while an
            // OBU is still open: either way an OBU is incomplete.
            tu.broken = true;
            return Err(PacketIssue::Malformed("fragment continuation does not match"));
        }
        let element_count = usize::from((aggregation >> 4) & 0x03);
        let packet_index = self.packets.len() as u32;
        let base = header.payload.start;
        let mut pos = 1;
        let mut index = 0;
        while pos < payload.len() {
            index += 1;
            let is_last = element_count != 0 && index == element_count;
            let len = if is_last {
                payload.len() - pos
            } else {
                let Some((len, used)) = leb128::read(&payload[pos..]) else {
                    tu.broken = true;
                    return Err(PacketIssue::Malformed("bad OBU element length"));
                };
                pos += used;
                if len > (payload.len() - pos) as u64 {
                    tu.broken = true;
                    return Err(PacketIssue::Malformed("OBU element overruns the packet"));
                }
                len as usize
            };
            let segment = Segment { packet: packet_index, start: (base + pos) as u32, end: (base + pos + len) as u32 };
            pos += len;
            let final_element = is_last || pos == payload.len();
            if index == 1 && continues {
                let Some(element) = self.elements.last_mut() else {
                    tu.broken = true;
                    return Err(PacketIssue::Malformed("fragment continuation without an OBU"));
                };
                element.segments += 1;
                element.len += len;
                self.segments.push(segment);
            } else if len == 0 && final_element && aggregation & Y_CONTINUED != 0 {
                tu.broken = true;
                return Err(PacketIssue::Malformed("empty OBU fragment"));
            } else if len > 0 {
                if self.elements.len() >= MAX_TU_OBUS {
                    tu.broken = true;
                    return Err(PacketIssue::Malformed("temporal unit has too many OBUs"));
                }
                self.elements.push(ObuElement { first_segment: self.segments.len() as u32, segments: 1, len });
                self.segments.push(segment);
            }
            if is_last {
                break;
            }
        }
        if element_count != 0 && index < element_count {
            tu.broken = true;
            return Err(PacketIssue::Malformed("fewer OBU elements than W says"));
        }
        tu.fragment_open = aggregation & Y_CONTINUED != 0;
        tu.bytes += payload.len();
        self.packets.push(packet);
        Ok(())
    }

    fn clear_tu(&mut self) {
        self.tu = None;
        self.packets.clear();
        self.segments.clear();
        self.elements.clear();
        self.plan.clear();
    }

    fn close_tu(&mut self, emit: &mut impl FnMut(Event<M>)) {
        let Some(tu) = self.tu.take() else { return };
        let assembled = if tu.broken || tu.fragment_open { None } else { self.assemble() };
        self.clear_tu();

        let Some((data, parsed_keyframe)) = assembled else {
            self.drop_tu(emit);
            return;
        };
        let keyframe = parsed_keyframe.unwrap_or(tu.new_sequence);
        if self.waiting_for_keyframe {
            if !keyframe || self.sequence_header.is_none() {
                self.stats.dropped_temporal_units += 1;
                emit(Event::KeyframeWanted);
                return;
            }
            self.waiting_for_keyframe = false;
        }
        self.stats.temporal_units += 1;
        emit(Event::TemporalUnit(TemporalUnit {
            data,
            rtp_timestamp: tu.timestamp,
            keyframe,
            discont: std::mem::take(&mut self.discont),
            meta: tu.meta,
        }));
    }

    fn drop_tu(&mut self, emit: &mut impl FnMut(Event<M>)) {
        self.stats.dropped_temporal_units += 1;
        self.discont = true;
        if self.wait_for_keyframe {
            self.waiting_for_keyframe = true;
        }
        emit(Event::KeyframeWanted);
    }

    /// Copies the first bytes of an element (enough for an OBU header and size field).
    fn element_prefix(&self, element: &ObuElement, out: &mut [u8; 10]) -> usize {
        let mut filled = 0;
        for s in self.segment_slices(element) {
            let n = s.len().min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&s[..n]);
            filled += n;
            if filled == out.len() {
                break;
            }
        }
        filled
    }

    fn segment_slices<'s>(&'s self, element: &ObuElement) -> impl Iterator<Item = &'s [u8]> {
        let first = element.first_segment as usize;
        self.segments[first..first + element.segments as usize]
            .iter()
            .map(|s| &self.packets[s.packet as usize].as_ref()[s.start as usize..s.end as usize])
    }

    /// Writes the TU. Returns `None` when an OBU is malformed, else the data and whether the TU
    /// holds a shown key frame (`None` when no frame header could tell).
    fn assemble(&mut self) -> Option<(Vec<u8>, Option<bool>)> {
        let mut total = obu::TEMPORAL_DELIMITER.len();
        let mut keyframe = None;
        let mut plan = std::mem::take(&mut self.plan);
        for (index, element) in self.elements.iter().enumerate() {
            let mut prefix = [0u8; 10];
            let n = self.element_prefix(element, &mut prefix);
            let header = ObuHeader::parse(&prefix[..n]).ok()?;
            let mut skip = header.byte_len();
            let payload_len = if header.has_size_field() {
                let (size, used) = leb128::read(&prefix[skip..n])?;
                skip += used;
                if size > (element.len - skip) as u64 {
                    return None;
                }
                size as usize
            } else {
                element.len.checked_sub(skip)?
            };
            if header.is_droppable() {
                continue;
            }
            match header.obu_type() {
                obu_type::SEQUENCE_HEADER => {
                    let payload = self.element_bytes(element, skip, payload_len);
                    if let Ok(seq) = SequenceHeader::parse(&payload) {
                        self.sequence_header = Some(seq);
                    }
                }
                obu_type::FRAME | obu_type::FRAME_HEADER if keyframe.is_none() => {
                    if let Some(seq) = &self.sequence_header {
                        keyframe = is_shown_key_frame(seq, &prefix[skip..n]);
                    }
                }
                _ => {}
            }
            total += header.sized_len(payload_len) + payload_len;
            plan.push(PlannedObu { element: index, header, skip, payload_len });
        }
        if plan.is_empty() {
            self.plan = plan;
            return None;
        }
        let mut data = Vec::with_capacity(total);
        data.extend_from_slice(&obu::TEMPORAL_DELIMITER);
        for planned in &plan {
            planned.header.write_sized(planned.payload_len, &mut data);
            let element = &self.elements[planned.element];
            self.copy_element(element, planned.skip, planned.payload_len, &mut data);
        }
        plan.clear();
        self.plan = plan;
        debug_assert_eq!(data.len(), total);
        Some((data, keyframe))
    }

    fn element_bytes(&self, element: &ObuElement, skip: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        self.copy_element(element, skip, len, &mut out);
        out
    }

    /// Appends `len` bytes of an element's data starting at offset `skip`.
    fn copy_element(&self, element: &ObuElement, mut skip: usize, mut len: usize, out: &mut Vec<u8>) {
        for s in self.segment_slices(element) {
            if len == 0 {
                break;
            }
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            let take = (s.len() - skip).min(len);
            out.extend_from_slice(&s[skip..skip + take]);
            len -= take;
            skip = 0;
        }
    }
}

#[cfg(test)]
mod tests;
