//! Sequence headers, RTP headers, OBU headers and leb128 on any bytes: no panic.
#![no_main]

use gstav1rtp::av1::sequence::SequenceHeader;
use gstav1rtp::av1::{leb128, obu::Obus};
use gstav1rtp::rtp::packet::RtpHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(seq) = SequenceHeader::parse(data) {
        let _ = seq.av1c(data);
        let _ = (seq.profile_name(), seq.chroma_format());
    }
    if let Ok(h) = RtpHeader::parse(data) {
        assert!(h.payload.end <= data.len());
    }
    let _ = leb128::read(data);
    Obus::new(data, true).for_each(drop);
});
