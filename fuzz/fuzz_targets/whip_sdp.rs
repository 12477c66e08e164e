//! Any text as a WHIP or WHEP offer, answer or PATCH fragment, and any request head: no panic;
//! an accepted offer always keeps at least one codec and parses again.
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
    let limits = sdp::OfferLimits::default();
    for prepared in [sdp::prepare_offer(text, &prefs), sdp::prepare_viewer_offer(text, &prefs, &limits)] {
        let Ok(prepared) = prepared else { continue };
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
    // WHIP "live" (token), WHEP "live" and "live/source" (open), nothing else.
    let _ = whip::route(&head, |protocol, s| match (protocol, s) {
        (whip::Protocol::Whip, "live") => StreamAuth::Token("t".into()),
        (whip::Protocol::Whep, "live" | "live/source") => StreamAuth::Open,
        _ => StreamAuth::Unknown,
    });
});
