//! Any bytes as a muxer's output cut into any buffers (fragmentsync's framing follower), and as
//! RTP packets of each codec (rtpframegate's gate): no panic; the cuts do not depend on how the
//! stream is split; every packet pushed comes out exactly once, released or dropped.
#![no_main]

use std::time::Duration;

use gstwhipsrc::fragments::{Boundaries, Container, Cut};
use gstwhipsrc::framegate::{Codec, FrameGate, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    for container in [Container::Mp4, Container::Matroska] {
        // Whole stream byte by byte vs in chunks of `split`: the same boundaries.
        let mut bytewise = Boundaries::new(container);
        let mut at_byte = Vec::new();
        for (i, b) in stream.iter().enumerate() {
            if matches!(bytewise.push(std::slice::from_ref(b)), Cut::Boundary | Cut::Block) {
                at_byte.push(i + 1);
            }
        }
        let mut chunked = Boundaries::new(container);
        let step = usize::from(split).max(1);
        let mut end = 0;
        for chunk in stream.chunks(step) {
            end += chunk.len();
            let cut = chunked.push(chunk);
            if matches!(cut, Cut::Boundary | Cut::Block) {
                assert!(at_byte.contains(&end), "a cut only where the byte-wise follower has one");
            }
        }
        chunked.seek(u64::from(split));
        let _ = chunked.push(stream);
    }

    // Packets: seq (2 bytes), timestamp step (1), marker (1), payload length (1), payload.
    for codec in [Codec::H264, Codec::H265, Codec::Vp8, Codec::Vp9] {
        let mut gate = FrameGate::new(codec, Duration::from_millis(100));
        let (mut rest, mut timestamp, mut pushed, mut out) = (stream, 0u32, 0usize, 0usize);
        while rest.len() >= 5 {
            let seq = u16::from_be_bytes([rest[0], rest[1]]);
            timestamp = timestamp.wrapping_add(u32::from(rest[2]) * 3000);
            let marker = rest[3] & 1 == 1;
            let len = usize::from(rest[4]).min(rest.len() - 5);
            let payload = &rest[5..5 + len];
            rest = &rest[5 + len..];
            let outcome = gate.push(Packet { seq, timestamp, marker, payload }, pushed, Duration::from_millis(pushed as u64));
            pushed += 1;
            out += outcome.release.len() + outcome.dropped.len();
        }
        assert!(out <= pushed, "nothing comes out twice");
    }
});
