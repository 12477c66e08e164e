use std::net::IpAddr;

use super::*;

const CHROME_OFFER: &str = include_str!("../../tests/data/chrome_av1.offer.sdp");

/// The offer shape OBS 30.2+ sends (INTEROP.md): audio first, no candidates, no RTX, a=group:LS,
/// ICE credentials and setup at session level as older libdatachannel writes them.
pub(crate) const OBS_OFFER: &str = "v=0\r\n\
o=rtc 3262923187 0 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=group:LS 0 1\r\n\
a=msid-semantic:WMS *\r\n\
a=ice-options:ice2,trickle\r\n\
a=ice-ufrag:Kf1v\r\n\
a=ice-pwd:oH3h0dvLGS2gXmcHtHJyS5\r\n\
a=fingerprint:sha-256 4C:84:5F:5D:0C:1A:7E:9A:33:38:4D:6B:C0:33:6B:6F:B3:41:5E:0B:0D:5F:93:2F:5A:53:DE:5A:46:33:F1:9E\r\n\
a=setup:actpass\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=ssrc:1 cname:obs\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=ssrc:2 cname:obs\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 AV1/90000\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n";

pub(crate) fn prefs() -> CodecPreferences {
    CodecPreferences {
        video: ["AV1", "H264", "H265", "VP9", "VP8"].map(String::from).to_vec(),
        audio: vec!["OPUS".into()],
        order: CodecOrder::Offer,
    }
}

/// OBS 32.1+ with three simulcast layers (INTEROP.md "OBS simulcast"): rids 0, 1, 2 declared
/// and listed, no `a=ssrc` for video.
pub(crate) fn obs_simulcast_offer(codec_line: &str) -> String {
    OBS_OFFER.replace("a=ssrc:2 cname:obs\r\n", "").replace("a=rtpmap:96 AV1/90000", codec_line)
        + "a=rid:0 send\r\na=rid:1 send\r\na=rid:2 send\r\na=simulcast:send 0;1;2\r\n"
}

#[test]
fn chrome_offer_keeps_av1_and_its_rtx_only() {
    let prepared = prepare_offer(CHROME_OFFER, &prefs()).unwrap();
    let video = &prepared.media[0];
    assert_eq!(video.kind, MediaKind::Video);
    let codec = video.codec.as_ref().unwrap();
    assert_eq!((codec.payload_type, codec.name.as_str(), codec.clock_rate), (45, "AV1", 90000));
    assert_eq!(codec.rtx_payload_type, Some(46));
    let media = &prepared.sdp.media[0];
    assert_eq!(media.formats(), ["45", "46"]);
    assert!(media.attributes("rtpmap").all(|r| r.starts_with("45 ") || r.starts_with("46 ")));
    assert!(media.attributes("rtcp-fb").all(|r| r.starts_with("45 ")));
    // Everything else survives: extensions, candidates, transport.
    assert_eq!(media.attributes("extmap").count(), 11);
    assert_eq!(media.attributes("candidate").count(), 2);
    assert_eq!(media.attribute("ice-ufrag"), Some("i4J9"));
}

#[test]
fn preferences_decide_the_codec() {
    let mut p = prefs();
    p.video = vec!["VP8".into(), "AV1".into()];
    p.order = CodecOrder::Server;
    let prepared = prepare_offer(CHROME_OFFER, &p).unwrap();
    assert_eq!(prepared.media[0].codec.as_ref().unwrap().name, "VP8");
    // By default the offer's order decides among the codecs we take: AV1 comes first there.
    p.order = CodecOrder::Offer;
    let prepared = prepare_offer(CHROME_OFFER, &p).unwrap();
    assert_eq!(prepared.media[0].codec.as_ref().unwrap().name, "AV1");

    p.video = vec!["H264".into()];
    let codec = prepare_offer(CHROME_OFFER, &p).unwrap().media[0].codec.clone().unwrap();
    let fmtp = codec.fmtp.unwrap();
    assert!(fmtp.contains("packetization-mode=1"), "{fmtp}");
    assert!(fmtp.contains("profile-level-id=42e01f"), "{fmtp}");
}

#[test]
fn obs_offer_gets_transport_attributes_in_every_section() {
    let prepared = prepare_offer(OBS_OFFER, &prefs()).unwrap();
    for media in &prepared.sdp.media {
        assert_eq!(media.attribute("ice-ufrag"), Some("Kf1v"));
        assert_eq!(media.attribute("ice-pwd"), Some("oH3h0dvLGS2gXmcHtHJyS5"));
        assert_eq!(media.attribute("setup"), Some("actpass"));
        assert!(media.attribute("fingerprint").unwrap().starts_with("sha-256 4C:84"));
    }
    let kinds: Vec<_> = prepared.media.iter().map(|m| (m.kind, m.codec.as_ref().unwrap().name.clone())).collect();
    assert_eq!(kinds, [(MediaKind::Audio, "OPUS".to_string()), (MediaKind::Video, "AV1".to_string())]);
    assert_eq!(prepared.media[1].codec.as_ref().unwrap().rtx_payload_type, None);
    // The text webrtcbin gets still parses.
    Sdp::parse(&prepared.sdp.to_string()).unwrap();
}

#[test]
fn unwanted_sections_become_inactive_and_nothing_wanted_is_422() {
    let mut p = prefs();
    p.audio.clear();
    let prepared = prepare_offer(OBS_OFFER, &p).unwrap();
    assert!(prepared.media[0].codec.is_none());
    assert!(prepared.sdp.media[0].attributes("inactive").next().is_some());
    assert!(prepared.sdp.media[0].attributes("sendonly").next().is_none());

    p.video = vec!["H265".into()];
    match prepare_offer(OBS_OFFER, &p) {
        Err(OfferError::Unacceptable(why)) => assert!(why.contains("AV1"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_offers_are_400() {
    for bad in ["", "hello", "v=0\r\nm=video 9\r\n", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", "v=0\r\nthis is not sdp\r\n"]
    {
        assert!(matches!(prepare_offer(bad, &prefs()), Err(OfferError::Malformed(_))), "{bad:?}");
    }
    let no_ice = OBS_OFFER.replace("a=ice-ufrag:Kf1v\r\n", "");
    assert!(matches!(prepare_offer(&no_ice, &prefs()), Err(OfferError::Malformed(_))));
}

const ANSWER: &str = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 OPUS/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:96 AV1/90000\r\n";

#[test]
fn answer_gets_candidates_public_addresses_and_bitrate_hint() {
    let candidates =
        [LocalCandidate { mline: 0, candidate: "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host".into() }];
    let public: [IpAddr; 1] = ["203.0.113.7".parse().unwrap()];
    let answer = finish_answer(ANSWER, &candidates, &public, 2500).unwrap();
    let sdp = Sdp::parse(&answer).unwrap();
    for media in &sdp.media {
        let c: Vec<_> = media.attributes("candidate").collect();
        assert_eq!(
            c,
            ["1 1 UDP 2015363327 127.0.0.1 40000 typ host", "1p0 1 UDP 2015363326 203.0.113.7 40000 typ host"]
        );
        assert!(media.attribute("end-of-candidates").is_some());
    }
    assert_eq!(sdp.media[1].attribute("fmtp"), Some("96 x-google-start-bitrate=2500"));
    assert_eq!(sdp.media[0].attribute("fmtp"), None);
}

#[test]
fn sdpfrag_with_candidates_and_restart_credentials() {
    let frag = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
a=end-of-candidates\r\n";
    let parsed = parse_sdpfrag(frag).unwrap();
    assert_eq!(parsed.ice_ufrag.as_deref(), Some("EsAw"));
    assert_eq!(parsed.candidates.len(), 1);
    assert_eq!(parsed.candidates[0].0.as_deref(), Some("0"));
    assert!(parsed.candidates[0].1.starts_with("1387637174 1 udp"));
    assert!(parsed.end_of_candidates);
    assert!(parse_sdpfrag("garbage").is_err());
}

const RESTART: &str = "a=ice-ufrag:N3wU\r\na=ice-pwd:n3wpassw0rdn3wpassw0rd\r\na=mid:1\r\n\
a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\na=end-of-candidates\r\n";

#[test]
fn restart_offer_has_the_new_credentials_and_only_the_new_candidates() {
    let prepared = prepare_offer(OBS_OFFER, &prefs()).unwrap();
    let mut offer = prepared.sdp.clone();
    offer.media[0].lines.push("a=candidate:9 1 udp 1 192.0.2.9 9 typ host".into());
    let restarted = restart_offer(&offer, &parse_sdpfrag(RESTART).unwrap()).unwrap();
    let text = restarted.to_string();
    assert_eq!(text.matches("a=ice-ufrag:N3wU\r\n").count(), 3, "session level and both sections: {text}");
    assert_eq!(text.matches("a=ice-pwd:n3wpassw0rdn3wpassw0rd\r\n").count(), 3, "{text}");
    assert!(!text.contains("Kf1v") && !text.contains("192.0.2.9"), "old credentials, candidates: {text}");
    assert_eq!(restarted.media[1].attribute("candidate"), Some("1 1 udp 2122260223 192.0.2.7 50000 typ host"));
    assert_eq!(restarted.media[0].attribute("candidate"), None);
    assert!(text.contains("o=rtc 3262923187 1 IN IP4"), "origin version increased: {text}");
    // Everything else is the offer as it was.
    assert_eq!(restarted.media[1].formats(), prepared.sdp.media[1].formats());
    assert_eq!(restarted.media[0].lines.len(), prepared.sdp.media[0].lines.len());
}

#[test]
fn restart_needs_valid_credentials() {
    let offer = prepare_offer(OBS_OFFER, &prefs()).unwrap().sdp;
    for frag in [
        "a=ice-ufrag:N3wU\r\n",
        "a=ice-pwd:n3wpassw0rdn3wpassw0rd\r\n",
        "a=ice-ufrag:N3w\r\na=ice-pwd:n3wpassw0rdn3wpassw0rd\r\n",
        "a=ice-ufrag:N3wU\r\na=ice-pwd:short\r\n",
        "a=ice-ufrag:N3w;\r\na=ice-pwd:n3wpassw0rdn3wpassw0rd\r\n",
    ] {
        let parsed = parse_sdpfrag(frag).unwrap();
        assert!(matches!(restart_offer(&offer, &parsed), Err(OfferError::Malformed(_))), "{frag:?}");
    }
}

#[test]
fn restart_answer_and_its_sdpfrag_carry_our_new_credentials_and_candidates() {
    let ours = IceCredentials::random();
    assert!(ours.ufrag.len() >= 4 && ours.pwd.len() >= 22);
    assert_ne!(ours, IceCredentials::random());
    let old = "a=ice-ufrag:old1\r\na=ice-pwd:oldpasswordoldpassword1\r\n";
    let webrtcbin_answer = ANSWER.replace("a=recvonly\r\n", &format!("a=recvonly\r\n{old}"));
    let answer = Sdp::parse(&with_credentials(&webrtcbin_answer, &ours).unwrap()).unwrap();
    for media in &answer.media {
        assert_eq!((media.attribute("ice-ufrag"), media.attribute("ice-pwd")), (Some(&*ours.ufrag), Some(&*ours.pwd)));
        assert_eq!(media.attributes("ice-ufrag").count(), 1);
    }

    let candidate = "candidate:1 1 UDP 2015363327 127.0.0.1 40000 typ host".to_string();
    let candidates = [LocalCandidate { mline: 0, candidate }];
    let answered = Sdp::parse(&finish_answer(ANSWER, &candidates, &[], 0).unwrap()).unwrap();
    let frag = restart_sdpfrag(&answered, &ours);
    assert!(frag.starts_with("a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"), "{frag}");
    let parsed = parse_sdpfrag(&frag).unwrap();
    assert_eq!((parsed.ice_ufrag, parsed.ice_pwd), (Some(ours.ufrag), Some(ours.pwd)));
    assert_eq!(
        parsed.candidates,
        vec![(Some("0".to_string()), "1 1 UDP 2015363327 127.0.0.1 40000 typ host".to_string())]
    );
    assert!(parsed.end_of_candidates);
}

#[test]
fn we_are_the_dtls_server_where_the_offer_lets_us_choose() {
    let answer = |setup: &str| {
        format!(
            "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=setup:{setup}\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=setup:{setup}\r\n"
        )
    };
    // OBS writes a=setup:actpass at session level: we answer passive in every section.
    let offer = Sdp::parse(OBS_OFFER).unwrap();
    let ours = as_dtls_server(&answer("active"), &offer).unwrap();
    assert_eq!(ours.matches("a=setup:passive").count(), 2, "{ours}");
    assert!(!ours.contains("a=setup:active"));
    // A publisher that wants to be the DTLS server (a=setup:passive) keeps us the client.
    let passive = Sdp::parse(&OBS_OFFER.replace("a=setup:actpass", "a=setup:passive")).unwrap();
    let ours = as_dtls_server(&answer("active"), &passive).unwrap();
    assert_eq!(ours.matches("a=setup:active").count(), 2, "{ours}");
    // Chromium writes it per section.
    let chrome = Sdp::parse(CHROME_OFFER).unwrap();
    assert!(as_dtls_server(&answer("active"), &chrome).unwrap().contains("a=setup:passive"));
}

#[test]
fn the_publishers_codec_order_wins_by_default() {
    // H.264 listed before AV1 (a hardware H.264 encoder, say): the publisher gets H.264.
    let offer = OBS_OFFER.replace("m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 9 UDP/TLS/RTP/SAVPF 97 96").replace(
        "a=rtpmap:96 AV1/90000\r\n",
        "a=rtpmap:97 H264/90000\r\na=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\na=rtpmap:96 AV1/90000\r\n",
    );
    let chosen = |order| {
        let p = CodecPreferences { order, ..prefs() };
        prepare_offer(&offer, &p).unwrap().media[1].codec.clone().unwrap().name
    };
    assert_eq!(chosen(CodecOrder::Offer), "H264");
    assert_eq!(chosen(CodecOrder::Server), "AV1");
    // A codec we do not take is skipped whatever its place.
    let p = CodecPreferences { video: vec!["AV1".into()], ..prefs() };
    assert_eq!(prepare_offer(&offer, &p).unwrap().media[1].codec.clone().unwrap().name, "AV1");
}

#[test]
fn simulcast_layers_are_read_in_the_offers_order() {
    let offer = obs_simulcast_offer("a=rtpmap:96 H264/90000");
    let prepared = prepare_offer(&offer, &prefs()).unwrap();
    assert_eq!(prepared.media[1].rids, ["0", "1", "2"]);
    assert_eq!(prepared.media[1].rid_extension, Some(2));
    assert!(prepared.media[0].rids.is_empty(), "audio has no layers");
    // Alternatives, paused layers and a recv list (RFC 8853); a listed rid never declared is not a layer.
    let media = Sdp::parse(&format!(
        "{}a=rid:f send\r\na=rid:h send max-width=640\r\na=rid:q send\r\na=rid:x recv\r\n\
         a=simulcast:send f;~h,q;z recv x\r\n",
        OBS_OFFER
    ))
    .unwrap()
    .media
    .remove(1);
    assert_eq!(media.sent_rids(), ["f", "h", "q"]);
    // Without a RID extension the layers cannot be told apart: not simulcast for us.
    let without = offer.replace("a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", "");
    let prepared = prepare_offer(&without, &prefs()).unwrap();
    assert!(prepared.media[1].rids.is_empty());
}

#[test]
fn the_answer_accepts_every_layer_as_obs_checks_it() {
    let offer = Sdp::parse(&obs_simulcast_offer("a=rtpmap:96 AV1/90000")).unwrap();
    // webrtcbin 1.22's answer: no rid, no simulcast, no extmap.
    let answer = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                  m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                  m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\na=rtpmap:96 AV1/90000\r\n";
    let text = accept_layers(answer, &offer).unwrap();
    // OBS's check: the first a=simulcast line anywhere, 1 + its count of ';', up to CRLF.
    let line = text.split("a=simulcast:").nth(1).unwrap().split("\r\n").next().unwrap();
    assert_eq!(line, "recv 0;1;2");
    assert_eq!(1 + line.matches(';').count(), 3);
    let video = &Sdp::parse(&text).unwrap().media[1];
    assert_eq!(video.attributes("rid").collect::<Vec<_>>(), ["0 recv", "1 recv", "2 recv"]);
    assert_eq!(video.extension_id(MID_EXTENSION), Some(1));
    assert_eq!(video.extension_id(RID_EXTENSION), Some(2));
    let audio = &Sdp::parse(&text).unwrap().media[0];
    assert!(audio.attribute("simulcast").is_none() && audio.attribute("rid").is_none());
    // Without the RID extension the layers cannot be told apart: none accepted.
    let without = obs_simulcast_offer("a=rtpmap:96 AV1/90000")
        .replace("a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", "");
    let text = accept_layers(answer, &Sdp::parse(&without).unwrap()).unwrap();
    assert!(!text.contains("a=simulcast") && !text.contains("a=rid"), "{text}");
    // Without simulcast in the offer: no layers, only the offered extensions kept.
    let plain = Sdp::parse(OBS_OFFER).unwrap();
    let text = accept_layers(answer, &plain).unwrap();
    assert!(!text.contains("a=simulcast") && !text.contains("a=rid"), "{text}");
    assert_eq!(Sdp::parse(&text).unwrap().media[1].extension_id(RID_EXTENSION), Some(2));
}

#[test]
fn firefox_offer_shape_is_read_whatever_its_attribute_order() {
    let offer = include_str!("../../tests/data/firefox_simulcast.offer.sdp");
    let prepared = prepare_offer(offer, &prefs()).unwrap();
    let (audio, video) = (&prepared.media[0], &prepared.media[1]);
    assert_eq!(audio.codec.as_ref().map(|c| (c.name.as_str(), c.payload_type)), Some(("OPUS", 109)));
    // VP8 is Firefox's first; its fmtp comes before its rtpmap.
    let codec = video.codec.clone().unwrap();
    assert_eq!((codec.name.as_str(), codec.payload_type), ("VP8", 120));
    assert_eq!(codec.fmtp.as_deref(), Some("max-fs=12288;max-fr=60"));
    assert_eq!(video.rids, ["q", "h", "f"]);
    assert_eq!(video.rid_extension, Some(8));
    // The session-level fingerprint is copied into each section (webrtcbin reads it there).
    let sdp = &prepared.sdp;
    for media in &sdp.media {
        assert!(media.attribute("fingerprint").is_some_and(|f| f.starts_with("sha-256 7E:0C")));
    }
    // `a=extmap:<id>/<direction>` is read by id.
    assert_eq!(sdp.media[1].extension_id("http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"), Some(6));
    // H.264 first: packetization-mode=1 (PT 126) rather than mode 0 (PT 97).
    let h264 = CodecPreferences { video: vec!["H264".into()], ..prefs() };
    let codec = prepare_offer(offer, &h264).unwrap().media[1].codec.clone().unwrap();
    assert_eq!(codec.payload_type, 126, "{codec:?}");
}

#[test]
fn the_dependency_descriptor_and_mixed_extensions_are_kept_for_av1_svc() {
    let offer = format!(
        "{}a=extmap:12 {DEPENDENCY_DESCRIPTOR_EXTENSION}\r\n",
        OBS_OFFER.replace("a=group:LS 0 1\r\n", "a=group:LS 0 1\r\na=extmap-allow-mixed\r\n")
    );
    let answer = "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                  m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
                  m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n";
    let text = accept_layers(answer, &Sdp::parse(&offer).unwrap()).unwrap();
    let sdp = Sdp::parse(&text).unwrap();
    assert_eq!(sdp.session_attribute("extmap-allow-mixed"), Some(""));
    assert_eq!(sdp.media[1].extension_id(DEPENDENCY_DESCRIPTOR_EXTENSION), Some(12));
    assert_eq!(sdp.media[0].extension_id(DEPENDENCY_DESCRIPTOR_EXTENSION), None, "not offered for audio");
}

#[test]
fn opus_is_stereo_at_48_khz_unless_the_sender_says_otherwise() {
    assert_eq!(opus_format(None), (2, 48_000));
    assert_eq!(opus_format(Some("minptime=10;useinbandfec=1")), (2, 48_000), "Chromium: may be stereo");
    assert_eq!(opus_format(Some("stereo=1;sprop-stereo=1")), (2, 48_000));
    assert_eq!(opus_format(Some("stereo=1; sprop-stereo=0")), (1, 48_000), "what it sends, not what it takes");
    assert_eq!(opus_format(Some("SPROP-MAXCAPTURERATE=16000")), (2, 16_000));
    assert_eq!(opus_format(Some("sprop-maxcapturerate=-1;sprop-stereo=2")), (2, 48_000), "invalid: defaults");
    assert_eq!(opus_format(Some("sprop-maxcapturerate=4294967295")), (2, 48_000), "beyond a caps int");
}

/// The OBS offer with `extra` more video sections (mids 2, 3, ...), bundled unless `bundle` is off.
fn offer_with_sections(extra: usize, bundle: bool) -> String {
    let video = &OBS_OFFER[OBS_OFFER.find("m=video").unwrap()..];
    let mut text = OBS_OFFER.to_owned();
    for i in 0..extra {
        text += &video.replace("a=mid:1", &format!("a=mid:{}", i + 2));
    }
    let mids: Vec<String> = (0..extra + 2).map(|i| i.to_string()).collect();
    let group = if bundle { format!("a=group:BUNDLE {}\r\n", mids.join(" ")) } else { String::new() };
    text.replace("a=group:BUNDLE 0 1\r\n", &group)
}

#[test]
fn offers_asking_too_much_are_refused_before_anything_is_built() {
    let limits = OfferLimits::default();
    for text in [OBS_OFFER, CHROME_OFFER] {
        assert!(prepare_offer_within(text, &prefs(), &limits).is_ok());
    }
    assert!(prepare_offer(&offer_with_sections(2, true), &prefs()).is_ok(), "4 sections: the default most");
    match prepare_offer(&offer_with_sections(3, true), &prefs()) {
        Err(e @ OfferError::OverLimit(_)) => assert!(e.to_string().contains("max-media-sections"), "{e}"),
        other => panic!("{other:?}"),
    }
    let roomy = OfferLimits { media_sections: 700, ..limits };
    assert!(prepare_offer_within(&offer_with_sections(698, true), &prefs(), &roomy).is_ok());
    // Unbundled, every section is a transport of its own (sockets, ICE, DTLS): refused.
    match prepare_offer_within(&offer_with_sections(0, false), &prefs(), &roomy) {
        Err(e @ OfferError::OverLimit(_)) => assert!(e.to_string().contains("BUNDLE"), "{e}"),
        other => panic!("{other:?}"),
    }
    let half = OBS_OFFER.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 1");
    assert!(matches!(prepare_offer(&half, &prefs()), Err(OfferError::OverLimit(_))));
    // One section needs no group.
    let audio_only = OBS_OFFER[..OBS_OFFER.find("m=video").unwrap()].replace("a=group:BUNDLE 0 1\r\n", "");
    assert!(check_offer(&Sdp::parse(&audio_only).unwrap(), &limits).is_ok());

    let candidates: String =
        (0..65).map(|i| format!("a=candidate:{i} 1 udp 2122260223 10.0.0.{i} 5000 typ host\r\n")).collect();
    let many = OBS_OFFER.replace("a=mid:1\r\n", &format!("a=mid:1\r\n{candidates}"));
    assert!(matches!(prepare_offer(&many, &prefs()), Err(OfferError::OverLimit(why)) if why.contains("65 candidates")));

    let rids: String = (0..9).map(|i| format!("a=rid:{i} send\r\n")).collect();
    let list: Vec<String> = (0..9).map(|i| i.to_string()).collect();
    let layered =
        OBS_OFFER.replace("a=mid:1\r\n", &format!("a=mid:1\r\n{rids}a=simulcast:send {}\r\n", list.join(";")));
    assert!(
        matches!(prepare_offer(&layered, &prefs()), Err(OfferError::OverLimit(why)) if why.contains("9 simulcast"))
    );
}

#[test]
fn a_viewers_offer_takes_the_sections_that_receive_a_codec_we_send() {
    // Chrome's offer made recvonly: a WHEP viewer's; our stream has H.264 and Opus.
    let viewer = CHROME_OFFER.replace("a=sendrecv", "a=recvonly").replace("a=sendonly", "a=recvonly");
    let prefs = CodecPreferences { video: vec!["H264".into()], audio: vec!["OPUS".into()], order: CodecOrder::Offer };
    let prepared = prepare_viewer_offer(&viewer, &prefs, &OfferLimits::default()).unwrap();
    let codecs: Vec<_> = prepared.media.iter().map(|m| m.codec.as_ref().map(|c| c.name.as_str())).collect();
    assert!(codecs.contains(&Some("H264")) && codecs.contains(&Some("OPUS")), "{codecs:?}");
    let h264 = prepared.media.iter().filter_map(|m| m.codec.as_ref()).find(|c| c.name == "H264").unwrap();
    let fmtp = h264.fmtp.as_deref().unwrap_or("");
    assert!(fmtp.contains("packetization-mode=1"), "payloaders send mode 1: {fmtp}");
    // The same offer as a publisher's sends nothing we can take; a publisher's offer (sendonly)
    // sent to a viewer endpoint is refused with what it lacks.
    assert!(prepare_offer(&viewer, &prefs).is_err());
    let publisher = CHROME_OFFER.replace("a=sendrecv", "a=sendonly");
    let e = prepare_viewer_offer(&publisher, &prefs, &OfferLimits::default()).unwrap_err();
    assert!(e.to_string().contains("recvonly/sendrecv media with a codec we send"), "{e}");
}
