//! Any sequence of packets into the AV1 depacketizer: no panic, and every TU it outputs is
//! container-ready. Input: records of [len u8][packet bytes]; the first byte sets the options.
#![no_main]

use gstav1rtp::av1::obu::{self, Obus};
use gstav1rtp::rtp::av1::{Depacketizer, Event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, mut rest)) = data.split_first() else { return };
    let mut depay: Depacketizer<Vec<u8>, ()> = Depacketizer::new(options & 1 != 0);
    let check = |e: Event<()>| {
        if let Event::TemporalUnit(tu) = e {
            assert!(tu.data.starts_with(&obu::TEMPORAL_DELIMITER));
            for o in Obus::new(&tu.data, false) {
                assert!(o.expect("well-formed OBU").is_canonical());
            }
        }
    };
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let mut packet = tail[..len].to_vec();
        rest = &tail[len..];
        if options & 2 != 0 && packet.len() >= 2 {
            // Make most packets pass the RTP header checks.
            packet[0] = 0x80 | (packet[0] & 0x3f);
        }
        let _ = depay.push(packet, (), check);
    }
    depay.finish(check);
});
