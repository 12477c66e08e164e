//! The WHIP HTTP contract (RFC 9725) of whipcastsrc, with a real HTTP client against the
//! element in a running pipeline: every status code, CORS, auth, two streams on one port, and
//! hostile clients (offers asking too much, idle and slow connections, sessions never connected).

use gst::prelude::*;
use whipcast_tests::*;

const CHROME_OFFER: &str = include_str!("../data/chrome_av1.offer.sdp");

/// The shape OBS sends: no candidates, credentials at session level, audio first, no RTX.
const OBS_OFFER: &str = include_str!("../data/obs_av1.offer.sdp");

struct Server {
    pipeline: gst::Pipeline,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A pipeline with one whipcastsrc per stream on one port; pads go to fakesinks.
fn serve(streams: &[&str], properties: &[(&str, &str)]) -> Server {
    serve_with(streams, properties, |_, _| {})
}

/// [`serve`], with `on_pad` called from each pad-added handler before the pad is linked.
fn serve_with(
    streams: &[&str],
    properties: &[(&str, &str)],
    on_pad: impl Fn(&gst::Element, &gst::Pad) + Clone + Send + Sync + 'static,
) -> Server {
    init();
    let port = free_port();
    let pipeline = gst::Pipeline::new();
    for stream in streams {
        let src = gst::ElementFactory::make("whipcastsrc")
            .property("address", "127.0.0.1")
            .property("port", u32::from(port))
            .property("stream", *stream)
            .build()
            .unwrap();
        for (name, value) in properties {
            src.set_property_from_str(name, value);
        }
        let (weak, on_pad) = (pipeline.downgrade(), on_pad.clone());
        src.connect_pad_added(move |src, pad| {
            on_pad(src, pad);
            let Some(pipeline) = weak.upgrade() else { return };
            let sink = gst::ElementFactory::make("fakesink").property("async", false).build().unwrap();
            pipeline.add(&sink).unwrap();
            sink.sync_state_with_parent().unwrap();
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        });
        pipeline.add(&src).unwrap();
    }
    pipeline.set_state(gst::State::Playing).expect("whipcastsrc starts");
    Server { pipeline, port }
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/sdp")];
    all.extend_from_slice(headers);
    http(server.port, "POST", path, &all, body.as_bytes())
}

fn assert_error(response: &HttpResponse, status: u16) {
    assert_eq!(response.status, status, "{response:?}");
    assert!(response.header("content-type").unwrap().starts_with("text/plain"));
    let body = response.body.trim_end();
    assert!(!body.is_empty() && !body.contains('\n'), "one line saying why: {body:?}");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}

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

/// pad-added handlers may ask the element anything: no lock of its own is held while it adds a
/// pad. (`whipcast serve` read the stats for /metrics holding its own lock while a starting
/// session's pad-added waited for that lock: both hung, and the HTTP server with them.)
#[test]
fn pad_added_handlers_may_read_the_elements_stats() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // A deadlock here would hang the test (and the pipeline's teardown) for good: fail instead.
    // `Finished` is dropped last, after the server, also when an assertion fails.
    struct Finished(Arc<AtomicBool>);
    impl Drop for Finished {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let finished = Finished(Arc::default());
    let watched = finished.0.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        if !watched.load(Ordering::SeqCst) {
            // Straight to stderr: the test harness keeps what eprintln! says, and aborting loses it.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"pad_added_handlers_may_read_the_elements_stats: deadlocked (no answer in 60 s)\n",
            );
            std::process::abort();
        }
    });
    let pads = Arc::new(AtomicUsize::new(0));
    let counted = pads.clone();
    let server = serve_with(&["live"], &[], move |src, _| {
        let stats = src.property::<gst::Structure>("stats");
        assert!(stats.has_field("session"), "{stats}");
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    assert_eq!(r.status, 201, "{r:?}");
    assert!(pads.load(Ordering::SeqCst) >= 1, "the session's pads were added");
    drop((server, finished));
}

#[test]
fn options_answers_cors_preflight() {
    let server = serve(&["live"], &[("token", "s3cret")]);
    let r = http(
        server.port,
        "OPTIONS",
        "/whip/live",
        &[("Origin", "http://elsewhere.example"), ("Access-Control-Request-Method", "POST")],
        b"",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("accept-post"), Some("application/sdp"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(r.header("access-control-allow-headers").unwrap().contains("Authorization"));
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in ["Location", "ETag", "Link"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    let r = http(server.port, "OPTIONS", "/whip/live/abc", &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("accept-patch"), Some("application/trickle-ice-sdpfrag"));
}

#[test]
fn bad_requests_get_their_status_and_a_reason() {
    let server = serve(&["live"], &[("video-codecs", "H265"), ("audio-codecs", "AAC")]);
    assert_error(
        &http(server.port, "POST", "/whip/live", &[("Content-Type", "text/plain")], CHROME_OFFER.as_bytes()),
        415,
    );
    assert_error(&post(&server, "/whip/live", &[], "this is not SDP"), 400);
    // Chromium offers neither H265 video nor AAC audio.
    assert_error(&post(&server, "/whip/live", &[], CHROME_OFFER), 422);
    let huge = format!("{CHROME_OFFER}{}", "a=x-padding:0123456789abcdef\r\n".repeat(4000));
    assert_error(&post(&server, "/whip/live", &[], &huge), 413);
    assert_error(&post(&server, "/whip/nope", &[], CHROME_OFFER), 404);
    assert_error(&http(server.port, "GET", "/whip/live", &[], b""), 405);
    assert_error(&http(server.port, "DELETE", "/whip/live/0123456789abcdef0123456789abcdef", &[], b""), 404);
}

#[test]
fn bearer_token_guards_post_delete_and_patch() {
    let server = serve(&["live"], &[("token", "s3cret")]);
    for auth in [None, Some("Bearer wrong"), Some("Basic czNjcmV0")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        let r = post(&server, "/whip/live", &headers, CHROME_OFFER);
        assert_error(&r, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = post(&server, "/whip/live", &[("Authorization", "Bearer s3cret")], CHROME_OFFER);
    assert_eq!(r.status, 201, "{r:?}");
    let location = r.header("location").unwrap().to_owned();

    let frag = "a=ice-ufrag:i4J9\r\na=ice-pwd:8sqsRASbd85VzZvL1dW6DPVZ\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n";
    let patch = |auth: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/trickle-ice-sdpfrag")];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        http(server.port, "PATCH", &location, &headers, frag.as_bytes())
    };
    assert_error(&patch(None), 401);
    assert_eq!(patch(Some("Bearer s3cret")).status, 204);
    assert_error(&http(server.port, "DELETE", &location, &[("Authorization", "Bearer nope")], b""), 401);
    assert_eq!(http(server.port, "DELETE", &location, &[("Authorization", "Bearer s3cret")], b"").status, 200);
    assert_error(&http(server.port, "DELETE", &location, &[("Authorization", "Bearer s3cret")], b""), 404);
}

#[test]
fn patch_trickle_and_ice_restart_rules() {
    let server = serve(&["live"], &[]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    let (location, etag) = (r.header("location").unwrap().to_owned(), r.header("etag").unwrap().to_owned());
    let value =
        |text: &str, name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("a={name}:"))).map(str::to_owned);
    let answered = (value(&r.body, "ice-ufrag").unwrap(), value(&r.body, "ice-pwd").unwrap());
    let sdpfrag = [("Content-Type", "application/trickle-ice-sdpfrag")];
    let trickle = "a=ice-ufrag:i4J9\r\na=ice-pwd:8sqsRASbd85VzZvL1dW6DPVZ\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50001 typ host\r\na=end-of-candidates\r\n";
    assert_eq!(http(server.port, "PATCH", &location, &sdpfrag, trickle.as_bytes()).status, 204);
    assert_error(
        &http(server.port, "PATCH", &location, &[("Content-Type", "application/sdp")], trickle.as_bytes()),
        415,
    );

    let restart = "a=ice-ufrag:NEW1\r\na=ice-pwd:newpasswordnewpassword1\r\n";
    assert_error(&http(server.port, "PATCH", &location, &sdpfrag, restart.as_bytes()), 428);
    let stale = [sdpfrag[0], ("If-Match", "\"stale\"")];
    assert_error(&http(server.port, "PATCH", &location, &stale, restart.as_bytes()), 412);
    let bad = "a=ice-ufrag:NEW1\r\na=ice-pwd:short\r\n";
    let current = [sdpfrag[0], ("If-Match", etag.as_str())];
    assert_error(&http(server.port, "PATCH", &location, &current, bad.as_bytes()), 400);

    // With the right ETag: 200, our new credentials and candidates, a new ETag.
    let r = http(server.port, "PATCH", &location, &current, restart.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/trickle-ice-sdpfrag"));
    let (ufrag, pwd) = (value(&r.body, "ice-ufrag").unwrap(), value(&r.body, "ice-pwd").unwrap());
    assert!(ufrag.len() >= 4 && pwd.len() >= 22, "{}", r.body);
    assert_ne!((ufrag.clone(), pwd.clone()), answered, "new credentials: {}", r.body);
    assert!(r.body.contains("\r\nm=video 9 UDP/TLS/RTP/SAVPF 45") && r.body.contains("\r\na=mid:0\r\n"), "{}", r.body);
    assert!(r.body.lines().any(|l| l.starts_with("a=candidate:") && l.contains(" 127.0.0.1 ")), "{}", r.body);
    assert!(r.body.ends_with("a=end-of-candidates\r\n"), "{}", r.body);
    let new_etag = r.header("etag").unwrap().to_owned();
    assert!(new_etag.starts_with('"') && new_etag != etag, "{new_etag} after {etag}");

    // The old ETag is stale now; trickle with the new credentials is trickle again (204).
    let again = "a=ice-ufrag:NEW2\r\na=ice-pwd:newpasswordnewpassword2\r\n";
    assert_error(&http(server.port, "PATCH", &location, &current, again.as_bytes()), 412);
    let trickle = trickle.replace("i4J9", "NEW1").replace("8sqsRASbd85VzZvL1dW6DPVZ", "newpasswordnewpassword1");
    let fresh = [sdpfrag[0], ("If-Match", new_etag.as_str())];
    assert_eq!(http(server.port, "PATCH", &location, &fresh, trickle.as_bytes()).status, 204);
    // If-Match: * restarts whatever the current ETag, and again with new credentials.
    let r = http(server.port, "PATCH", &location, &[sdpfrag[0], ("If-Match", "*")], again.as_bytes());
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(value(&r.body, "ice-ufrag"), Some(ufrag));
    assert_ne!(r.header("etag"), Some(new_etag.as_str()));
    assert_error(
        &http(server.port, "PATCH", "/whip/live/ffffffffffffffffffffffffffffffff", &sdpfrag, trickle.as_bytes()),
        404,
    );
}

#[test]
fn two_restarts_with_one_etag_give_one_200_and_one_412() {
    let server = serve(&["live"], &[]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    let (location, etag) = (r.header("location").unwrap().to_owned(), r.header("etag").unwrap().to_owned());
    let restart = |n: usize| {
        let (location, etag, port) = (location.clone(), etag.clone(), server.port);
        std::thread::spawn(move || {
            let frag = format!("a=ice-ufrag:NEW{n}\r\na=ice-pwd:newpasswordnewpassword{n}\r\n");
            let headers = [("Content-Type", "application/trickle-ice-sdpfrag"), ("If-Match", etag.as_str())];
            http(port, "PATCH", &location, &headers, frag.as_bytes()).status
        })
    };
    let (a, b) = (restart(1), restart(2));
    let mut statuses = [a.join().unwrap(), b.join().unwrap()];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "the second restart must see the ETag the first one changed");
}

#[test]
fn busy_stream_is_replaced_or_refused() {
    let server = serve(&["live"], &[]);
    let first = post(&server, "/whip/live", &[], CHROME_OFFER);
    let second = post(&server, "/whip/live", &[], CHROME_OFFER);
    assert_eq!((first.status, second.status), (201, 201));
    // The first session is gone: it was replaced, as when OBS reconnects.
    let old = first.header("location").unwrap();
    assert_error(&http(server.port, "DELETE", old, &[], b""), 404);
    assert_eq!(http(server.port, "DELETE", second.header("location").unwrap(), &[], b"").status, 200);

    let server = serve(&["live"], &[("replace-publisher", "false")]);
    assert_eq!(post(&server, "/whip/live", &[], CHROME_OFFER).status, 201);
    assert_error(&post(&server, "/whip/live", &[], CHROME_OFFER), 409);
}

#[test]
fn max_sessions_gives_503_with_retry_after() {
    let server = serve(&["a", "b"], &[("max-sessions", "1")]);
    assert_eq!(post(&server, "/whip/a", &[], CHROME_OFFER).status, 201);
    let r = post(&server, "/whip/b", &[], CHROME_OFFER);
    assert_error(&r, 503);
    assert!(r.header("retry-after").is_some());
}

#[test]
fn two_streams_share_one_port() {
    let server = serve(&["cam1", "cam2"], &[]);
    let a = post(&server, "/whip/cam1", &[], CHROME_OFFER);
    let b = post(&server, "/whip/cam2", &[], CHROME_OFFER);
    assert_eq!((a.status, b.status), (201, 201));
    assert!(a.header("location").unwrap().starts_with("/whip/cam1/"));
    assert!(b.header("location").unwrap().starts_with("/whip/cam2/"));
    assert_error(&post(&server, "/whip/cam3", &[], CHROME_OFFER), 404);
}

#[test]
fn stun_server_is_announced_in_a_link_header() {
    let server = serve(&["live"], &[("stun-server", "stun://127.0.0.1:3478")]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    assert_eq!(r.status, 201);
    assert_eq!(r.header_values("link"), ["<stun:127.0.0.1:3478>; rel=\"ice-server\""]);
}

#[test]
fn a_port_in_use_is_a_clear_element_error() {
    init();
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let pipeline = gst::parse::launch(&format!("whipcastsrc address=127.0.0.1 port={port} ! fakesink"))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .unwrap();
    let gst::MessageView::Error(e) = msg.view() else { unreachable!() };
    let debug = e.debug().unwrap_or_default();
    assert!(debug.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{debug}");
    let _ = pipeline.set_state(gst::State::Null);
}

#[test]
fn https_with_a_pem_certificate_and_key() {
    let dir = output_path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs (Debian package openssl; make test installs it)");
    assert!(status.success());
    let server = serve(&["live"], &[("tls-certificate", cert.to_str().unwrap()), ("tls-key", key.to_str().unwrap())]);
    let offer = data_path("obs_av1.offer.sdp");
    let curl = |scheme: &str| {
        std::process::Command::new("curl")
            .args(["-sk", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/sdp"])
            .arg("--data-binary")
            .arg(format!("@{}", offer.display()))
            .arg(format!("{scheme}://127.0.0.1:{}/whip/live", server.port))
            .output()
            .expect("curl runs (Debian package curl; make test installs it)")
    };
    let out = curl("https");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n201") && text.contains("a=fingerprint:"), "{text}");
    // Plain HTTP on the HTTPS port gets no WHIP answer.
    assert!(!String::from_utf8_lossy(&curl("http").stdout).ends_with("201"));
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

/// The session bins inside the (first) whipcastsrc of a pipeline.
fn session_bins(server: &Server) -> Vec<String> {
    let src = server
        .pipeline
        .children()
        .into_iter()
        .find(|e| e.factory().is_some_and(|f| f.name() == "whipcastsrc"))
        .and_downcast::<gst::Bin>()
        .unwrap();
    src.children().iter().map(|e| e.name().to_string()).filter(|n| n.starts_with("session-")).collect()
}

#[test]
fn concurrent_posts_leave_one_session_and_nothing_nobody_owns() {
    // Eight publishers POST at once: each replaces the one before, some while that one's
    // webrtcbin is still being made. In the end one session is live, every other one is gone.
    let server = serve(&["live"], &[]);
    let port = server.port;
    let posts: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                http(port, "POST", "/whip/live", &[("Content-Type", "application/sdp")], OBS_OFFER.as_bytes())
            })
        })
        .collect();
    let responses: Vec<HttpResponse> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    for r in &responses {
        // 409: replaced by a newer POST before its answer was ready.
        assert!(r.status == 201 || r.status == 409, "{r:?}");
    }
    let created: Vec<String> =
        responses.iter().filter(|r| r.status == 201).map(|r| r.header("location").unwrap().to_owned()).collect();
    assert!(!created.is_empty());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while session_bins(&server).len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(session_bins(&server).len(), 1, "{:?}", session_bins(&server));
    // Exactly one of the resources handed out is live; the others are 404.
    let deleted: Vec<u16> = created.iter().map(|l| http(port, "DELETE", l, &[], b"").status).collect();
    assert_eq!(deleted.iter().filter(|&&s| s == 200).count(), 1, "{deleted:?}");
    assert!(deleted.iter().all(|&s| s == 200 || s == 404), "{deleted:?}");
    while !session_bins(&server).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(session_bins(&server).is_empty(), "{:?}", session_bins(&server));
    let src = server.pipeline.children().into_iter().find(|e| e.factory().is_some_and(|f| f.name() == "whipcastsrc"));
    let stats = src.unwrap().property::<gst::Structure>("stats");
    assert_eq!((stats.get::<u64>("sessions-started"), stats.get::<u64>("sessions-ended")), (Ok(8), Ok(8)));
}

// Hostile clients: each case bounded in count and time, on loopback, and the server goes on
// serving a publisher during or after it.

/// An OBS offer with `sections` media sections, none bundled: unchecked, webrtcbin gives each a
/// transport of its own (sockets, ICE, DTLS, threads).
#[test]
fn an_offer_asking_for_many_transports_is_refused_before_anything_is_built() {
    let server = serve(&["live"], &[]);
    let start = std::time::Instant::now();
    let offer = unbundled_offer(OBS_OFFER, 700);
    assert!(offer.len() < 64 * 1024, "{} bytes: within the body limit, as the attack was", offer.len());
    let r = post(&server, "/whip/live", &[], &offer);
    assert_error(&r, 422);
    assert!(r.body.contains("700 media sections") && r.body.contains("max-media-sections"), "{}", r.body);
    assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
    assert_error(&post(&server, "/whip/live", &[], &unbundled_offer(OBS_OFFER, 2)), 422);
    assert!(session_bins(&server).is_empty(), "no webrtcbin was made");
    // A publisher as OBS is still served.
    assert_eq!(post(&server, "/whip/live", &[], OBS_OFFER).status, 201);
}

#[test]
fn trickled_candidates_are_bounded_per_session() {
    let server = serve(&["live"], &[]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    let location = r.header("location").unwrap().to_owned();
    let sdpfrag = [("Content-Type", "application/trickle-ice-sdpfrag")];
    let candidates = |n: usize, from: usize| -> String {
        (from..from + n)
            .map(|i| format!("a=candidate:{i} 1 udp 2122260223 10.0.{}.{} 5000 typ host\r\n", i / 250, i % 250))
            .collect()
    };
    let frag = |body: String| format!("a=ice-ufrag:i4J9\r\na=ice-pwd:8sqsRASbd85VzZvL1dW6DPVZ\r\na=mid:0\r\n{body}");
    assert_eq!(http(server.port, "PATCH", &location, &sdpfrag, frag(candidates(60, 0)).as_bytes()).status, 204);
    let r = http(server.port, "PATCH", &location, &sdpfrag, frag(candidates(10, 60)).as_bytes());
    assert_error(&r, 422);
    assert!(r.body.contains("trickled candidates"), "{}", r.body);
    assert_eq!(http(server.port, "DELETE", &location, &[], b"").status, 200);
}

#[test]
fn a_post_that_never_connects_does_not_end_the_stream() {
    // on-disconnect=eos (the default): only a session that delivered media ends the stream, not
    // a POST whose publisher never connects (a scanner, a firewall) and times out.
    let server = serve(&["live"], &[("timeout", "1")]);
    let r = post(&server, "/whip/live", &[], OBS_OFFER);
    assert_eq!(r.status, 201, "{r:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !session_bins(&server).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(session_bins(&server).is_empty(), "the session never timed out");
    let late = http(server.port, "DELETE", r.header("location").unwrap(), &[], b"");
    assert!(late.status == 404 && late.body.contains("no media for 1 s"), "{late:?}");
    assert_eq!(post(&server, "/whip/live", &[], OBS_OFFER).status, 201, "the stream goes on");
}

/// Opens a connection and sends `head` (nothing when empty).
fn connect(port: u16, head: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// Whether the server closed `stream` within `within` (reads return end of file or fail).
fn closed_within(stream: &mut std::net::TcpStream, within: std::time::Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue, // a response (408) before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn one_client_cannot_hold_every_connection() {
    let server = serve(&["live"], &[]);
    // Idle connections: the server keeps 64 from one address; past them it closes at once.
    let mut idle: Vec<_> = (0..64).map(|_| connect(server.port, "")).collect();
    let mut extra = connect(server.port, "");
    assert!(closed_within(&mut extra, std::time::Duration::from_secs(2)), "the 65th stayed open");
    assert!(!closed_within(&mut idle[0], std::time::Duration::from_millis(300)), "kept ones are kept");
    drop(idle);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(post(&server, "/whip/live", &[], OBS_OFFER).status, 201, "served once they are gone");
}

#[test]
fn slow_and_idle_clients_are_closed() {
    use std::io::Write;
    let server = serve(&["live"], &[]);
    let start = std::time::Instant::now();
    // An idle connection, headers trickled a byte at a time (slowloris), a body that never ends.
    let mut idle = connect(server.port, "");
    let mut slow_head = connect(server.port, "POST /whip/live HTTP/1.1\r\nHost: x\r\n");
    let mut slow_body = connect(
        server.port,
        "POST /whip/live HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 1000\r\n\r\nv=0\r\n",
    );
    let trickle = std::thread::spawn({
        let mut head = slow_head.try_clone().unwrap();
        let mut body = slow_body.try_clone().unwrap();
        move || {
            for _ in 0..15 {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let _ = head.write_all(b"X");
                let _ = body.write_all(b"a");
            }
        }
    });
    // Meanwhile a publisher is served.
    assert_eq!(post(&server, "/whip/live", &[], OBS_OFFER).status, 201);
    let limit = std::time::Duration::from_secs(13);
    assert!(closed_within(&mut idle, limit), "idle connection still open after {:?}", start.elapsed());
    assert!(closed_within(&mut slow_head, limit), "slow headers still open after {:?}", start.elapsed());
    assert!(closed_within(&mut slow_body, limit), "slow body still open after {:?}", start.elapsed());
    assert!(start.elapsed() < std::time::Duration::from_secs(14), "{:?}", start.elapsed());
    trickle.join().unwrap();
}

#[test]
fn eos_before_any_publisher_is_an_error_not_a_hang() {
    // gst-launch-1.0 -e on Ctrl-C sends EOS and waits for it; with no pad yet it reaches no sink.
    let server = serve(&["live"], &[]);
    assert!(server.pipeline.send_event(gst::event::Eos::new()));
    let bus = server.pipeline.bus().unwrap();
    let message = bus.timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Error]);
    let Some(message) = message else { panic!("no error within 2 s") };
    let gst::MessageView::Error(error) = message.view() else { unreachable!() };
    assert!(error.error().message().contains("before any publisher"), "{}", error.error());
}
