//! Hostile clients: offers asking for too much, too many trickled candidates, POSTs that never
//! connect, and idle, slow or too many connections from one client.

use whipcast_tests::*;

use crate::support::{assert_error, post, serve, session_bins};

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
