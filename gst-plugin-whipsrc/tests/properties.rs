//! Property tests: WHIP's parsers never panic on any input, and what they accept stays valid.

use gstwhipsrc::sdp::{self, CodecPreferences};
use gstwhipsrc::whip::{self, RequestHead, StreamAuth};
use proptest::prelude::*;

const CHROME_OFFER: &str = include_str!("data/chrome_av1.offer.sdp");

fn prefs() -> CodecPreferences {
    CodecPreferences {
        video: vec!["AV1".into(), "H264".into()],
        audio: vec!["OPUS".into()],
        order: sdp::CodecOrder::Offer,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_as_offer_fragment_or_answer(text in "\\PC{0,400}") {
        if let Ok(prepared) = sdp::prepare_offer(&text, &prefs()) {
            prop_assert!(prepared.media.iter().any(|m| m.codec.is_some()));
        }
        let _ = sdp::parse_sdpfrag(&text);
        let _ = sdp::finish_answer(&text, &[], &[], 1000);
        if let Ok(offer) = sdp::Sdp::parse(&text) {
            let _ = sdp::accept_layers(&text, &offer);
        }
    }

    #[test]
    fn any_simulcast_lines_give_layers_that_were_declared(
        rids in prop::collection::vec("[a-z0-9~;,]{0,6}", 0..5), list in "[a-z0-9~;, ]{0,30}",
    ) {
        // Into Chromium's video section (first; it offers the RID extension).
        let mut lines: String = rids.iter().map(|rid| format!("a=rid:{rid} send\r\n")).collect();
        lines += &format!("a=simulcast:send {list}\r\n");
        let text = CHROME_OFFER.replacen("m=audio", &format!("{lines}m=audio"), 1);
        let media = sdp::Sdp::parse(&text).unwrap().media.remove(0);
        let layers = media.sent_rids();
        for layer in &layers {
            prop_assert!(rids.contains(layer), "{layer:?} not declared");
        }
        let offer = sdp::Sdp::parse(&text).unwrap();
        let answer = sdp::accept_layers(&text, &offer).unwrap();
        prop_assert!(sdp::Sdp::parse(&answer).is_ok());
    }

    #[test]
    fn a_real_offer_with_lines_dropped_never_panics(drop in prop::collection::vec(any::<bool>(), 200)) {
        let text: String = CHROME_OFFER
            .lines()
            .zip(drop.iter().cycle())
            .filter(|(_, d)| !**d)
            .map(|(l, _)| format!("{l}\r\n"))
            .collect();
        if let Ok(prepared) = sdp::prepare_offer(&text, &prefs()) {
            prop_assert!(sdp::Sdp::parse(&prepared.sdp.to_string()).is_ok());
        }
    }

    #[test]
    fn any_request_head_routes_or_is_rejected_with_a_reason(
        method in "[A-Z]{0,8}", path in "\\PC{0,80}", ct in proptest::option::of("\\PC{0,40}"),
        auth in proptest::option::of("\\PC{0,40}"), len in proptest::option::of(any::<u64>()),
    ) {
        let head = RequestHead { method: &method, path: &path, content_type: ct.as_deref(), authorization: auth.as_deref(), content_length: len };
        if let Err(r) = whip::route(&head, |_, _| StreamAuth::Token("secret".into())) {
            prop_assert!((400..600).contains(&r.status));
            prop_assert!(!r.reason.is_empty() && !r.reason.contains('\n'));
        }
    }
}

/// A Matroska start (EBML header, open Segment, Tracks with an audio track 2, open Cluster), so
/// that random bytes after it reach blocks.
const MATROSKA_START: &[u8] = &[
    0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x16, 0x54,
    0xAE, 0x6B, 0x88, 0xAE, 0x86, 0xD7, 0x81, 0x02, 0x83, 0x81, 0x02, 0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// fragmentsync's follower on any muxer output, whole or in chunks: no panic, and the same
    /// audio blocks found to lack their key flag.
    #[test]
    fn matroska_audio_key_flags_do_not_depend_on_buffers(
        tail in prop::collection::vec(prop_oneof![Just(0xA3u8), Just(0x82), Just(0x00), any::<u8>()], 0..400),
        step in 1usize..40,
    ) {
        use gstwhipsrc::fragments::{Boundaries, Container};
        let stream = [MATROSKA_START, &tail].concat();
        let mut whole = Boundaries::new(Container::Matroska);
        whole.push(&stream);
        let expected = whole.audio_key_flags().to_vec();
        let mut chunked = Boundaries::new(Container::Matroska);
        let mut found = Vec::new();
        for (n, chunk) in stream.chunks(step).enumerate() {
            chunked.push(chunk);
            found.extend(chunked.audio_key_flags().iter().map(|i| n * step + i));
        }
        prop_assert_eq!(found, expected);
    }
}
