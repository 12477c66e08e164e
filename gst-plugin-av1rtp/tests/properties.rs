//! Property tests: on any input the sans-IO parsers neither panic nor allocate without bound,
//! and whatever they output is a well-formed, container-ready temporal unit.

use gstav1rtp::av1::fixer::TuFixer;
use gstav1rtp::av1::obu::{Obus, obu_type};
use gstav1rtp::av1::sequence::SequenceHeader;
use gstav1rtp::av1::{leb128, obu};
use gstav1rtp::rtp::av1::{Depacketizer, Event, MAX_TU_BYTES};
use gstav1rtp::rtp::packet::RtpHeader;
use proptest::prelude::*;

/// A TU is container-ready: one leading TD, every OBU sized minimally, no padding/tile lists.
fn assert_container_ready(tu: &[u8]) {
    assert!(tu.starts_with(&obu::TEMPORAL_DELIMITER));
    let obus: Vec<_> = Obus::new(tu, false).collect::<Result<_, _>>().expect("strictly parseable");
    assert!(obus.len() >= 2);
    for (i, o) in obus.iter().enumerate() {
        assert!(o.is_canonical());
        let t = o.header.obu_type();
        assert_eq!(t == obu_type::TEMPORAL_DELIMITER, i == 0);
        assert!(t != obu_type::PADDING && t != obu_type::TILE_LIST);
    }
}

fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, if marker { 0xe0 } else { 0x60 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 7]);
    p.extend_from_slice(payload);
    p
}

/// A simple independent packetizer: every OBU without size field, W=1, split at `mtu` bytes.
fn packetize(tus: &[Vec<(u8, Vec<u8>)>], mtu: usize) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut seq = 0u16;
    for (t, tu) in tus.iter().enumerate() {
        let ts = t as u32 * 3000;
        let mut chunks: Vec<(bool, bool, Vec<u8>)> = Vec::new();
        for (header, payload) in tu {
            let mut element = vec![*header];
            element.extend_from_slice(payload);
            let pieces: Vec<_> = element.chunks(mtu).map(<[u8]>::to_vec).collect();
            let n = pieces.len();
            for (i, piece) in pieces.into_iter().enumerate() {
                chunks.push((i > 0, i + 1 < n, piece));
            }
        }
        let count = chunks.len();
        for (i, (z, y, piece)) in chunks.into_iter().enumerate() {
            let mut payload = vec![u8::from(z) << 7 | u8::from(y) << 6 | 0x10];
            payload.extend(piece);
            packets.push(rtp(seq, ts, i + 1 == count, &payload));
            seq = seq.wrapping_add(1);
        }
    }
    packets
}

fn obu_strategy() -> impl Strategy<Value = (u8, Vec<u8>)> {
    // Frame, frame header, tile group or metadata, with or without an extension header.
    (prop::sample::select(vec![3u8, 4, 5, 6]), any::<bool>(), prop::collection::vec(any::<u8>(), 1..600)).prop_map(
        |(t, ext, mut payload)| {
            if t == 6 || t == 3 {
                payload[0] = 0b0011_0000; // an inter frame header
            }
            if ext { (t << 3 | 0x04, [vec![0x28], payload].concat()) } else { (t << 3, payload) }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn depacketizer_never_panics_and_outputs_only_well_formed_tus(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..60),
        headers in prop::collection::vec((any::<u16>(), 0u32..4, any::<bool>(), any::<u8>()), 60),
    ) {
        let mut depay: Depacketizer<Vec<u8>, ()> = Depacketizer::new(false);
        for (i, body) in packets.iter().enumerate() {
            // Half the packets get a valid RTP header so that the AV1 layer is reached.
            let (seq, ts, marker, agg) = headers[i];
            let packet = if i % 2 == 0 { rtp(seq % 8, ts, marker, &[&[agg][..], body].concat()) } else { body.clone() };
            let _ = depay.push(packet, (), |e| {
                if let Event::TemporalUnit(tu) = e {
                    assert_container_ready(&tu.data);
                    assert!(tu.data.len() <= MAX_TU_BYTES + 1024);
                }
            });
        }
        depay.finish(|_| {});
    }

    #[test]
    fn packetized_tus_come_back_exactly(
        tus in prop::collection::vec(prop::collection::vec(obu_strategy(), 1..4), 1..8),
        mtu in 1usize..300,
    ) {
        let mut depay: Depacketizer<Vec<u8>, ()> = Depacketizer::new(false);
        let mut out = Vec::new();
        for p in packetize(&tus, mtu) {
            depay.push(p, (), |e| if let Event::TemporalUnit(tu) = e { out.push(tu.data) }).unwrap();
        }
        prop_assert_eq!(out.len(), tus.len());
        for (got, tu) in out.iter().zip(&tus) {
            let mut expected = obu::TEMPORAL_DELIMITER.to_vec();
            for (header, payload) in tu {
                let h = obu::ObuHeader::parse(&[*header, payload[0]]).unwrap();
                let body = &payload[h.byte_len() - 1..];
                h.write_sized(body.len(), &mut expected);
                expected.extend_from_slice(body);
            }
            prop_assert_eq!(got, &expected);
        }
    }

    #[test]
    fn fixer_never_panics_and_is_idempotent(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut fixer = TuFixer::new();
        // Sync the fixer first so that arbitrary TUs are processed, not waited out.
        let key = [
            &obu::TEMPORAL_DELIMITER[..],
            &[0x0a, 11, 0x00, 0x00, 0x00, 0x2d, 0x4c, 0xff, 0xb3, 0xc0, 0x1a, 0x00, 0x80],
            &[0x32, 2, 0b0001_0000, 0],
        ].concat();
        fixer.fix(&key).unwrap();
        if let Ok(fixed) = fixer.fix(&data) {
            assert_container_ready(&fixed.data);
            let again = fixer.fix(&fixed.data).unwrap();
            prop_assert!(matches!(again.data, std::borrow::Cow::Borrowed(_)));
            prop_assert_eq!(&*again.data, &*fixed.data);
        }
    }

    #[test]
    fn header_parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = SequenceHeader::parse(&data);
        let _ = RtpHeader::parse(&data);
        let _ = leb128::read(&data);
        for o in Obus::new(&data, true) { let _ = o; }
    }

    #[test]
    fn leb128_round_trips(value in 0u64..=leb128::MAX_VALUE) {
        let mut out = Vec::new();
        leb128::write(value, &mut out);
        prop_assert_eq!(leb128::read(&out), Some((value, out.len())));
        prop_assert_eq!(out.len(), leb128::encoded_len(value));
    }
}
