//! The Prometheus metrics: valid for promtool, guarded by the token, their counters moving.

use std::process::{Command, Stdio};
use std::time::Duration;

use whipcast_tests::whipcast::{Server, TOKEN};
use whipcast_tests::*;

use crate::support::{SERIAL, publish_a_face};

/// The value of the sample `name` (with its labels) in a Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')));
    line.and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn metrics_pass_promtool_and_their_counters_move() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-metrics", &["--sessions", "1"]);
    let auth = format!("Bearer {TOKEN}");
    let scrape = || {
        let r = http(server.port, "GET", "/metrics", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{r:?}");
        r.body
    };
    let refused = http(server.port, "GET", "/metrics", &[], b"");
    assert_eq!(refused.status, 401, "a publisher's token is needed: {refused:?}");
    let publisher = publish_a_face(&server, 7);
    std::thread::sleep(Duration::from_millis(3000));
    let first = scrape();
    std::thread::sleep(Duration::from_millis(2000));
    let second = scrape();
    report(publisher);
    server.wait_exit(Duration::from_secs(30));

    for text in [&first, &second] {
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs (Debian package prometheus; make test-deps installs it)");
        std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(sample(&second, "whipcast_sessions_active"), 1.0);
    assert!(sample(&second, "whipcast_session_received_bytes_per_second{stream=\"s\"}") > 10_000.0, "{second}");
    for counter in [
        "whipcast_session_packets_received_total{stream=\"s\"}",
        "whipcast_recording_frames_total{stream=\"s\"}",
        "whipcast_facemark_inference_seconds_count",
    ] {
        let (before, after) = (sample(&first, counter), sample(&second, counter));
        assert!(0.0 < before && before < after, "{counter}: {before} then {after}");
    }
    assert!(sample(&second, "whipcast_http_requests_total{code=\"201\"}") >= 1.0, "{second}");
    assert!(sample(&second, "whipcast_http_requests_total{code=\"401\"}") >= 1.0, "{second}");
}
