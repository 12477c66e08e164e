//! What a POST gets back: a complete answer, for each publisher's offer shape (Chromium, OBS,
//! Firefox), with the codec and the simulcast layers chosen as publishers check them.

use whipcast_tests::*;

use crate::support::{post, serve};

#[test]
fn post_gives_201_with_a_complete_answer() {
    let server = serve(&["live"], &[]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    let location = r.header("location").unwrap();
    let id = location.strip_prefix("/whip/live/").expect("Location under the stream");
    assert!(id.len() >= 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "unguessable id: {id}");
    let etag = r.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"), "strong ETag: {etag}");
    for expected in [
        "a=recvonly",
        "a=group:BUNDLE",
        "a=rtcp-mux",
        "a=end-of-candidates",
        "a=rtcp-fb:45 nack",
        "a=rtcp-fb:45 nack pli",
        "AV1/90000",
    ] {
        assert!(r.body.contains(expected), "{expected} missing in\n{}", r.body);
    }
    assert!(r.body.contains(" 127.0.0.1 ") && r.body.contains("typ host"), "a loopback host candidate:\n{}", r.body);
    assert!(!r.body.contains("a=sendonly"));
}

#[test]
fn obs_shaped_offer_without_candidates_gets_a_usable_answer() {
    let server = serve(&["live"], &[]);
    let r = post(
        &server,
        "/whip/live",
        &[("User-Agent", "Mozilla/5.0 (OBS-Studio/31.0.0; Linux x86_64; en-US)")],
        OBS_OFFER,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let answer = &r.body;
    let media: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(media.len(), 2, "{answer}");
    assert!(media[0].starts_with("m=audio") && media[1].starts_with("m=video"));
    assert!(answer.contains("OPUS/48000/2") || answer.contains("opus/48000/2"));
    assert!(answer.contains("AV1/90000"));
    assert!(answer.contains("a=ice-ufrag:") && answer.contains("a=fingerprint:sha-256"));
    assert!(answer.contains("a=setup:active") || answer.contains("a=setup:passive"));
    assert!(answer.matches("a=candidate:").count() >= 1, "{answer}");
}

#[test]
fn the_publishers_codec_order_decides_unless_told_otherwise() {
    // Chromium's offer with H.264 (PT 102 and its RTX) moved before AV1, as a publisher with a
    // hardware H.264 encoder would list it.
    let offer = CHROME_OFFER.replace("SAVPF 45 46 96 97 102 103 ", "SAVPF 102 103 45 46 96 97 ");
    let video_codec = |properties: &[(&str, &str)]| {
        let server = serve(&["live"], properties);
        let r = post(&server, "/whip/live", &[], &offer);
        assert_eq!(r.status, 201, "{r:?}");
        let m = r.body.lines().find(|l| l.starts_with("m=video")).unwrap().to_owned();
        let pt = m.split(' ').nth(3).unwrap().to_owned();
        let rtpmap = format!("a=rtpmap:{pt} ");
        let line = r.body.lines().find(|l| l.starts_with(&rtpmap)).unwrap_or_else(|| panic!("{}", r.body));
        line[rtpmap.len()..].split('/').next().unwrap().to_owned()
    };
    assert_eq!(video_codec(&[]), "H264");
    assert_eq!(video_codec(&[("codec-order", "server")]), "AV1");
}

#[test]
fn a_simulcast_offer_gets_every_layer_accepted_as_obs_checks_it() {
    // OBS 32.1+ with three layers: rids declared and listed, no video SSRC.
    let offer = OBS_OFFER.replace("a=ssrc:2 cname:obs\r\n", "")
        + "a=rid:0 send\r\na=rid:1 send\r\na=rid:2 send\r\na=simulcast:send 0;1;2\r\n";
    let server = serve(&["live"], &[]);
    let r = post(&server, "/whip/live", &[], &offer);
    assert_eq!(r.status, 201, "{r:?}");
    // OBS's check: the first a=simulcast line anywhere; 1 + its ';' up to CRLF must be 3.
    let line = r.body.split("a=simulcast").nth(1).and_then(|rest| rest.split("\r\n").next());
    assert_eq!(line, Some(":recv 0;1;2"), "{}", r.body);
    for rid in ["a=rid:0 recv\r\n", "a=rid:1 recv\r\n", "a=rid:2 recv\r\n"] {
        assert!(r.body.contains(rid), "{rid} missing in\n{}", r.body);
    }
    let video = r.body.split("m=video").nth(1).unwrap();
    assert!(video.contains("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"), "RID extension kept:\n{}", r.body);
    assert!(video.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "MID extension kept:\n{}", r.body);
}

/// Firefox's offer shape (128 ESR, simulcast with three rids): the fingerprint at session level
/// only, attributes in its own order (`a=fmtp` before `a=rtpmap`, `a=mid` after the extensions),
/// extensions with a direction (`a=extmap:6/recvonly`), VP8 first, H.264 in both packetization
/// modes, RTX, RED and ULPFEC, rids listed lowest first, and every layer's SSRC and RTX SSRC
/// declared (`a=ssrc-group:FID`), which OBS and Chromium leave out.
#[test]
fn a_firefox_simulcast_offer_gets_its_layers_and_its_first_codec() {
    let offer = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../gst-plugin-whipsrc/tests/data/firefox_simulcast.offer.sdp"),
    )
    .unwrap();
    let server = serve(&["live"], &[]);
    let r = post(
        &server,
        "/whip/live",
        &[("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")],
        &offer,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let answer = &r.body;
    let line = answer.split("a=simulcast").nth(1).and_then(|rest| rest.split("\r\n").next());
    assert_eq!(line, Some(":recv q;h;f"), "{answer}");
    let (audio, video) = answer.split_once("m=video").unwrap();
    assert!(video.starts_with(" 9 UDP/TLS/RTP/SAVPF 120"), "VP8 (Firefox's first) taken:\n{answer}");
    assert!(video.contains("a=rtpmap:120 VP8/90000"), "{answer}");
    for rid in ["a=rid:q recv\r\n", "a=rid:h recv\r\n", "a=rid:f recv\r\n"] {
        assert!(video.contains(rid), "{rid} missing in\n{answer}");
    }
    assert!(video.contains("a=extmap:8 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"), "{answer}");
    assert!(audio.contains("m=audio 9 UDP/TLS/RTP/SAVPF 109"), "Opus taken:\n{answer}");
    assert!(answer.contains("a=fingerprint:sha-256") && answer.matches("a=candidate:").count() >= 1, "{answer}");
    assert!(!answer.contains("a=sendonly"));
}
