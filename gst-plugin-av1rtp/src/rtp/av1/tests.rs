use super::*;
use crate::av1::testutil::CHROME_SEQ;

const SEQ: u8 = obu_type::SEQUENCE_HEADER << 3;
const FRAME: u8 = obu_type::FRAME << 3;
const TD: u8 = obu_type::TEMPORAL_DELIMITER << 3;
const SIZE: u8 = 0x02;
const EXT: u8 = 0x04;
/// First byte of a frame header: show_existing_frame 0, KEY_FRAME, show_frame 1.
const KEY: u8 = 0b0001_0000;
/// show_existing_frame 0, INTER_FRAME, show_frame 1.
const INTER: u8 = 0b0011_0000;

fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0x80 | 45 } else { 45 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn padding_only(seq: u16, ts: u32) -> Vec<u8> {
    let mut p = rtp(seq, ts, false, &[]);
    p[0] |= 0x20;
    p.extend_from_slice(&[0; 199]);
    p.push(200);
    p
}

/// Aggregation header byte.
fn agg(z: bool, y: bool, w: u8, n: bool) -> u8 {
    u8::from(z) << 7 | u8::from(y) << 6 | w << 4 | u8::from(n) << 3
}

fn leb(v: usize) -> Vec<u8> {
    let mut out = Vec::new();
    leb128::write(v as u64, &mut out);
    out
}

/// An OBU as an RTP element carries it: header without size field, then the payload.
fn obu(header: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![header];
    out.extend_from_slice(payload);
    out
}

/// The same OBU as the depayloader must write it: size field set, minimal leb128 size.
fn sized(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out[0] |= SIZE;
    out.extend(leb(payload.len()));
    out.extend_from_slice(payload);
    out
}

fn key_frame_payload(len: usize) -> Vec<u8> {
    let mut p = vec![KEY];
    p.extend((1..len).map(|i| (i * 7) as u8));
    p
}

fn inter_frame_payload(len: usize) -> Vec<u8> {
    let mut p = vec![INTER];
    p.extend((1..len).map(|i| (i * 11) as u8));
    p
}

fn tu_bytes(obus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![TD | SIZE, 0];
    for o in obus {
        out.extend_from_slice(o);
    }
    out
}

struct Run {
    depay: Depacketizer<Vec<u8>, u16>,
    tus: Vec<TemporalUnit<u16>>,
    keyframe_wanted: usize,
    issues: Vec<PacketIssue>,
}

impl Run {
    fn new(wait_for_keyframe: bool) -> Self {
        Self { depay: Depacketizer::new(wait_for_keyframe), tus: Vec::new(), keyframe_wanted: 0, issues: Vec::new() }
    }

    fn push(&mut self, packet: Vec<u8>) {
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let (tus, wanted) = (&mut self.tus, &mut self.keyframe_wanted);
        let result = self.depay.push(packet, seq, |e| match e {
            Event::TemporalUnit(tu) => tus.push(tu),
            Event::KeyframeWanted => *wanted += 1,
        });
        if let Err(issue) = result {
            self.issues.push(issue);
        }
    }

    fn finish(&mut self) {
        let tus = &mut self.tus;
        self.depay.finish(|e| {
            if let Event::TemporalUnit(tu) = e {
                tus.push(tu)
            }
        });
    }
}

/// A key-frame TU in one W=2 packet: the sequence header (with length) and the frame.
fn key_packet(seq: u16, ts: u32, frame: &[u8]) -> Vec<u8> {
    let seq_obu = obu(SEQ, &CHROME_SEQ);
    let mut payload = vec![agg(false, false, 2, true)];
    payload.extend(leb(seq_obu.len()));
    payload.extend(seq_obu);
    payload.extend(obu(FRAME, frame));
    rtp(seq, ts, true, &payload)
}

fn key_tu(frame: &[u8]) -> Vec<u8> {
    tu_bytes(&[sized(&[SEQ], &CHROME_SEQ), sized(&[FRAME], frame)])
}

fn inter_packet(seq: u16, ts: u32, frame: &[u8]) -> Vec<u8> {
    let mut payload = vec![agg(false, false, 1, false)];
    payload.extend(obu(FRAME, frame));
    rtp(seq, ts, true, &payload)
}

#[test]
fn w2_key_frame_then_w1_inter_frame() {
    let mut run = Run::new(true);
    let key = key_frame_payload(40);
    let inter = inter_frame_payload(20);
    run.push(key_packet(10, 1000, &key));
    run.push(inter_packet(11, 4000, &inter));
    assert_eq!(run.tus.len(), 2);
    assert_eq!(run.tus[0].data, key_tu(&key));
    assert!(run.tus[0].keyframe && run.tus[0].discont);
    assert_eq!(run.tus[1].data, tu_bytes(&[sized(&[FRAME], &inter)]));
    assert!(!run.tus[1].keyframe && !run.tus[1].discont);
    assert_eq!((run.tus[0].rtp_timestamp, run.tus[1].rtp_timestamp), (1000, 4000));
    assert_eq!((run.tus[0].meta, run.tus[1].meta), (10, 11));
    assert_eq!(run.depay.stats().temporal_units, 2);
}

#[test]
fn w0_every_element_has_a_length() {
    let mut run = Run::new(false);
    let a = obu(obu_type::METADATA << 3, &[1, 2, 3]);
    let b = obu(FRAME, &inter_frame_payload(5));
    let mut payload = vec![agg(false, false, 0, false)];
    for o in [&a, &b] {
        payload.extend(leb(o.len()));
        payload.extend_from_slice(o);
    }
    run.push(rtp(1, 0, true, &payload));
    assert_eq!(run.tus.len(), 1);
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&a[..1], &a[1..]), sized(&b[..1], &b[1..])]));
}

#[test]
fn w3_three_elements_last_without_length() {
    let mut run = Run::new(false);
    let obus = [
        obu(obu_type::METADATA << 3, &[9]),
        obu(obu_type::FRAME_HEADER << 3, &[INTER, 1, 2]),
        obu(obu_type::TILE_GROUP << 3, &[7; 30]),
    ];
    let mut payload = vec![agg(false, false, 3, false)];
    payload.extend(leb(obus[0].len()));
    payload.extend_from_slice(&obus[0]);
    payload.extend(leb(obus[1].len()));
    payload.extend_from_slice(&obus[1]);
    payload.extend_from_slice(&obus[2]);
    run.push(rtp(1, 0, true, &payload));
    let expected: Vec<_> = obus.iter().map(|o| sized(&o[..1], &o[1..])).collect();
    assert_eq!(run.tus[0].data, tu_bytes(&expected));
}

/// Splits one OBU over `parts` W=1 packets.
fn fragmented(first_seq: u16, ts: u32, o: &[u8], parts: usize, n: bool) -> Vec<Vec<u8>> {
    let chunk = o.len().div_ceil(parts);
    let pieces: Vec<_> = o.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let first = i == 0;
            let last = i == pieces.len() - 1;
            let mut payload = vec![agg(!first, !last, 1, n && first)];
            payload.extend_from_slice(piece);
            rtp(first_seq + i as u16, ts, last, &payload)
        })
        .collect()
}

#[test]
fn fragment_over_four_packets_with_two_byte_sizes() {
    let mut run = Run::new(false);
    let frame = inter_frame_payload(1000);
    let o = obu(FRAME, &frame);
    for p in fragmented(100, 0, &o, 4, false) {
        run.push(p);
    }
    assert_eq!(run.tus.len(), 1);
    let expected = tu_bytes(&[sized(&[FRAME], &frame)]);
    assert_eq!(&expected[2..5], &[FRAME | SIZE, 0xe8, 0x07]); // 1000 = 0x3e8, two leb128 bytes
    assert_eq!(run.tus[0].data, expected);
}

#[test]
fn extension_header_survives() {
    let mut run = Run::new(false);
    #[allow(clippy::unusual_byte_groupings)] // grouped by field: temporal id, spatial id, reserved
    let ext = 0b010_01_000; // temporal 2, spatial 1
    let mut o = vec![FRAME | EXT, ext];
    o.extend(inter_frame_payload(300));
    for p in fragmented(5, 0, &o, 3, false) {
        run.push(p);
    }
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&o[..2], &o[2..])]));
}

#[test]
fn existing_size_field_is_replaced_not_doubled() {
    let mut run = Run::new(false);
    let frame = inter_frame_payload(10);
    // Non-minimal size field (10 in two bytes) as some senders write it.
    let mut o = vec![FRAME | SIZE, 0x8a, 0x00];
    o.extend_from_slice(&frame);
    let mut payload = vec![agg(false, false, 1, false)];
    payload.extend_from_slice(&o);
    run.push(rtp(1, 0, true, &payload));
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&[FRAME], &frame)]));

    // A size field whose OBU is split by a fragment boundary inside the size itself.
    let frame = inter_frame_payload(200);
    let mut o = vec![FRAME | SIZE];
    o.extend(leb(frame.len()));
    o.extend_from_slice(&frame);
    let mut first = vec![agg(false, true, 1, false)];
    first.extend_from_slice(&o[..2]);
    let mut second = vec![agg(true, false, 1, false)];
    second.extend_from_slice(&o[2..]);
    run.push(rtp(2, 3000, false, &first));
    run.push(rtp(3, 3000, true, &second));
    assert_eq!(run.tus[1].data, tu_bytes(&[sized(&[FRAME], &frame)]));
}

#[test]
fn delimiters_tile_lists_and_padding_obus_are_dropped() {
    let mut run = Run::new(false);
    let frame = inter_frame_payload(8);
    let mut payload = vec![agg(false, false, 0, false)];
    for o in [
        obu(TD, &[]),
        obu(obu_type::PADDING << 3, &[0; 4]),
        obu(FRAME, &frame),
        obu(obu_type::TILE_LIST << 3, &[1, 2, 3]),
    ] {
        payload.extend(leb(o.len()));
        payload.extend(o);
    }
    run.push(rtp(1, 0, true, &payload));
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&[FRAME], &frame)]));
}

#[test]
fn zero_length_obus_are_kept_with_a_zero_size() {
    let mut run = Run::new(false);
    let frame = inter_frame_payload(3);
    let mut payload = vec![agg(false, false, 2, false)];
    payload.extend(leb(1));
    payload.push(obu_type::METADATA << 3); // header only: empty payload
    payload.extend(obu(FRAME, &frame));
    run.push(rtp(1, 0, true, &payload));
    assert_eq!(run.tus[0].data, tu_bytes(&[vec![obu_type::METADATA << 3 | SIZE, 0], sized(&[FRAME], &frame)]));
}

#[test]
fn padding_only_packets_are_ignored_even_mid_tu() {
    let mut run = Run::new(false);
    let frame = inter_frame_payload(600);
    let o = obu(FRAME, &frame);
    let mut packets = fragmented(10, 9000, &o, 2, false);
    // A probe with another timestamp between the fragments, on its own sequence number.
    let second = packets.pop().unwrap();
    run.push(packets.pop().unwrap());
    run.push(padding_only(11, 12345));
    let mut second = second;
    second[2..4].copy_from_slice(&12u16.to_be_bytes());
    run.push(second);
    assert!(run.issues.is_empty(), "{:?}", run.issues);
    assert_eq!(run.tus.len(), 1);
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&[FRAME], &frame)]));
    assert_eq!(run.depay.stats().packets_lost, 0);
}

#[test]
fn missing_marker_ends_tu_at_timestamp_change() {
    let mut run = Run::new(false);
    let a = inter_frame_payload(5);
    let b = inter_frame_payload(6);
    let mut p = inter_packet(1, 0, &a);
    p[1] &= 0x7f; // clear marker
    run.push(p);
    assert!(run.tus.is_empty());
    run.push(inter_packet(2, 3000, &b));
    assert_eq!(run.tus.len(), 2);
    assert_eq!(run.tus[0].data, tu_bytes(&[sized(&[FRAME], &a)]));
    assert_eq!(run.tus[0].rtp_timestamp, 0);
}

#[test]
fn finish_pushes_a_whole_tu_without_marker_but_not_an_open_fragment() {
    let mut run = Run::new(false);
    let mut p = inter_packet(1, 0, &inter_frame_payload(5));
    p[1] &= 0x7f;
    run.push(p);
    run.finish();
    assert_eq!(run.tus.len(), 1);

    let mut run = Run::new(false);
    let o = obu(FRAME, &inter_frame_payload(50));
    let packets = fragmented(1, 0, &o, 3, false);
    run.push(packets[0].clone());
    run.finish();
    assert!(run.tus.is_empty());
}

/// A stream: key frame, then inter frames each fragmented over 3 packets, then a key frame.
fn stream() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut packets = vec![key_packet(0, 0, &key_frame_payload(50))];
    let mut expected = vec![key_tu(&key_frame_payload(50))];
    let mut seq = 1;
    for i in 1..=3u32 {
        let frame = inter_frame_payload(90 + i as usize);
        for p in fragmented(seq, i * 3000, &obu(FRAME, &frame), 3, false) {
            packets.push(p);
            seq += 1;
        }
        expected.push(tu_bytes(&[sized(&[FRAME], &frame)]));
    }
    packets.push(key_packet(seq, 4 * 3000, &key_frame_payload(60)));
    expected.push(key_tu(&key_frame_payload(60)));
    (packets, expected)
}

#[test]
fn complete_stream_passes() {
    let (packets, expected) = stream();
    let mut run = Run::new(true);
    for p in packets {
        run.push(p);
    }
    let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
    assert_eq!(got, expected);
}

#[test]
fn loss_of_first_middle_or_last_fragment_drops_until_key_frame() {
    // Packets 1..=3 are the first inter frame's fragments.
    for lost in [1usize, 2, 3] {
        let (packets, expected) = stream();
        let mut run = Run::new(true);
        for (i, p) in packets.into_iter().enumerate() {
            if i != lost {
                run.push(p);
            }
        }
        let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
        assert_eq!(got, vec![expected[0].clone(), expected[4].clone()], "lost packet {lost}");
        assert!(run.tus[1].discont && run.tus[1].keyframe);
        assert_eq!(run.depay.stats().packets_lost, 1);
        assert!(run.keyframe_wanted >= 1);
        assert_eq!(run.depay.stats().dropped_temporal_units, 3, "lost packet {lost}");
    }
}

#[test]
fn without_wait_for_keyframe_only_the_broken_tu_is_dropped() {
    let (packets, expected) = stream();
    let mut run = Run::new(false);
    for (i, p) in packets.into_iter().enumerate() {
        if i != 2 {
            run.push(p);
        }
    }
    let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
    assert_eq!(got, [&expected[..1], &expected[2..]].concat());
    assert!(run.tus[1].discont);
}

#[test]
fn reordered_packets_without_a_jitter_buffer_never_give_a_corrupt_tu() {
    let (mut packets, expected) = stream();
    packets.swap(2, 3);
    let mut run = Run::new(true);
    for p in packets {
        run.push(p);
    }
    for tu in &run.tus {
        assert!(expected.contains(&tu.data));
    }
    assert_eq!(run.tus.len(), 2);
    assert!(run.issues.contains(&PacketIssue::Stale));
}

#[test]
fn duplicates_are_ignored() {
    let (packets, expected) = stream();
    let mut run = Run::new(true);
    for p in packets {
        run.push(p.clone());
        run.push(p);
    }
    let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(run.depay.stats().duplicates, 11);
}

#[test]
fn sequence_numbers_wrap() {
    let (packets, expected) = stream();
    let mut run = Run::new(true);
    for (i, mut p) in packets.into_iter().enumerate() {
        let seq = 65533u16.wrapping_add(i as u16);
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        run.push(p);
    }
    assert_eq!(run.tus.len(), expected.len());
    assert_eq!(run.depay.stats().packets_lost, 0);
}

#[test]
fn waits_for_a_key_frame_at_the_start() {
    let (packets, expected) = stream();
    let mut run = Run::new(true);
    for p in packets.into_iter().skip(1) {
        run.push(p);
    }
    let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
    assert_eq!(got, vec![expected[4].clone()]);
}

#[test]
fn key_frame_is_read_from_the_frame_header_not_only_the_n_bit() {
    let mut run = Run::new(true);
    let mut p = key_packet(0, 0, &key_frame_payload(10));
    p[12] &= !N_NEW_SEQUENCE;
    run.push(p);
    assert_eq!(run.tus.len(), 1);
    assert!(run.tus[0].keyframe);
    // N=1 on an inter frame does not make it a key frame once the header can be read.
    let mut p = inter_packet(1, 3000, &inter_frame_payload(10));
    p[12] |= N_NEW_SEQUENCE;
    run.push(p);
    assert!(!run.tus[1].keyframe);
}

#[test]
fn malformed_payloads_drop_the_tu_and_the_stream_goes_on() {
    let (packets, expected) = stream();
    let mut run = Run::new(false);
    for (i, mut p) in packets.into_iter().enumerate() {
        if i == 2 {
            p.truncate(12 + 1); // aggregation header only, W=1 needs one element
        }
        run.push(p);
    }
    assert!(matches!(run.issues[..], [PacketIssue::Malformed(_)]));
    let got: Vec<_> = run.tus.iter().map(|t| t.data.clone()).collect();
    assert_eq!(got, [&expected[..1], &expected[2..]].concat());

    // A W=0 element length past the end of the packet.
    let mut run = Run::new(false);
    run.push(rtp(1, 0, true, &[agg(false, false, 0, false), 0x7f, FRAME, INTER]));
    assert!(run.tus.is_empty());
    assert_eq!(run.issues, vec![PacketIssue::Malformed("OBU element overruns the packet")]);
    // Z=1 with nothing to continue.
    run.push(rtp(2, 3000, true, &[agg(true, false, 1, false), 1, 2, 3]));
    assert!(run.tus.is_empty());
    // The forbidden bit in an OBU header.
    run.push(rtp(3, 6000, true, &[agg(false, false, 1, false), 0x80 | FRAME, INTER]));
    assert!(run.tus.is_empty());
    run.push(inter_packet(4, 9000, &inter_frame_payload(4)));
    assert_eq!(run.tus.len(), 1);
}

#[test]
fn a_temporal_unit_of_too_many_obus_is_dropped_and_the_stream_goes_on() {
    // Packets of 1-byte OBUs (W=0, each with a 1-byte length): bookkeeping per OBU, few bytes.
    let per_packet = 600;
    let mut payload = vec![agg(false, false, 0, false)];
    for _ in 0..per_packet {
        payload.extend([1, obu_type::PADDING << 3]);
    }
    let mut run = Run::new(false);
    let packets = MAX_TU_OBUS / per_packet + 2;
    for seq in 0..packets as u16 {
        run.push(rtp(seq, 0, false, &payload));
    }
    assert_eq!(run.issues, vec![PacketIssue::Malformed("temporal unit has too many OBUs")]);
    assert!(run.depay.elements.len() <= MAX_TU_OBUS, "{}", run.depay.elements.len());
    run.push(rtp(packets as u16, 0, true, &payload));
    assert!(run.tus.is_empty());
    run.push(inter_packet(packets as u16 + 1, 3000, &inter_frame_payload(4)));
    assert_eq!(run.tus.len(), 1, "the next TU passes");
}

#[test]
fn rtp_errors_are_reported() {
    let mut run = Run::new(false);
    run.push(vec![0x80; 5]);
    assert_eq!(run.issues, vec![PacketIssue::Rtp(RtpError::TooShort(5))]);
    assert_eq!(run.depay.stats().malformed_packets, 1);
}
