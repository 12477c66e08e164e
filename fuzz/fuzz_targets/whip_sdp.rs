//! Any text as a WHIP offer, answer or PATCH fragment, and any request head: no panic; an
//! accepted offer always keeps at least one codec and parses again.
#![no_main]

use gstwhipsrc::sdp::{self, CodecPreferences};
use gstwhipsrc::whip::{self, RequestHead, StreamAuth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let prefs = CodecPreferences {
        video: vec!["AV1".into(), "H264".into(), "VP8".into()],
        audio: vec!["OPUS".into()],
        order: sdp::CodecOrder::Offer,
    };
    if let Ok(prepared) = sdp::prepare_offer(text, &prefs) {
        assert!(prepared.media.iter().any(|m| m.codec.is_some()));
        sdp::Sdp::parse(&prepared.sdp.to_string()).expect("what we give webrtcbin parses");
    }
    if let Ok(offer) = sdp::Sdp::parse(text) {
        let _ = sdp::accept_layers(text, &offer);
    }
    let _ = sdp::finish_answer(text, &[], &["203.0.113.1".parse().unwrap()], 2500);
    let _ = sdp::parse_sdpfrag(text);
    let mut parts = text.splitn(4, '\n');
    let head = RequestHead {
        method: parts.next().unwrap_or(""),
        path: parts.next().unwrap_or(""),
        content_type: parts.next(),
        authorization: parts.next(),
        content_length: Some(data.len() as u64),
    };
    let _ = whip::route(&head, |s| if s == "live" { StreamAuth::Token("t".into()) } else { StreamAuth::Open });
});
