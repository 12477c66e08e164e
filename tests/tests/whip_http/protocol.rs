//! The HTTP contract: CORS preflight, every error status with its reason, the bearer token,
//! PATCH (trickle and ICE restart with ETags), the STUN Link header and HTTPS.

use whipcast_tests::*;

use crate::support::{assert_error, post, serve};

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
fn stun_server_is_announced_in_a_link_header() {
    let server = serve(&["live"], &[("stun-server", "stun://127.0.0.1:3478")]);
    let r = post(&server, "/whip/live", &[], CHROME_OFFER);
    assert_eq!(r.status, 201);
    assert_eq!(r.header_values("link"), ["<stun:127.0.0.1:3478>; rel=\"ice-server\""]);
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
