//! Sessions and streams: a busy stream replaced or refused, the session limit, two streams on one
//! port, and concurrent POSTs leaving exactly one session.

use gst::prelude::*;
use whipcast_tests::*;

use crate::support::{assert_error, post, serve, session_bins};

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
