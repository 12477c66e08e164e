//! The browser publish page (headless Chromium) and the tokens that guard publishing.

use std::process::{Command, Stdio};
use std::time::Duration;

use whipcast_tests::whipcast::{Server, TOKEN};
use whipcast_tests::*;

use crate::support::{SERIAL, assert_holds_frames, check, files_with};

#[test]
fn publish_page_in_headless_chromium_is_recorded() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-page", &["--sessions", "1", "--no-facemark"]);
    let page = format!("http://127.0.0.1:{}/", server.port);
    let chromium = Command::new("node")
        .arg(peers().join("chromium/publish.mjs"))
        .args(["--page-url", &page, "--codec", "AV1", "--seconds", "6", "--token", TOKEN, "--stream", "s", "--audio"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let result = report(chromium);
    assert!(result.contains("\"streams\":[\"s\"]"), "the page offers the served stream: {result}");
    assert!(result.contains("live on s: video/AV1"), "the page shows the session live: {result}");
    let folder = server.folder.clone();
    server.wait_exit(Duration::from_secs(30));
    let webm = files_with(&folder, "webm");
    assert_eq!(webm.len(), 1);
    let checked = check(&webm[0]);
    assert!(checked.contains("audio/x-opus"), "{checked}");
    assert_holds_frames(&checked, json_u64(&result, "framesSent"));
}

#[test]
fn the_publish_page_needs_the_token_to_publish() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-page-token", &["--no-facemark"]);
    let page = format!("http://127.0.0.1:{}/", server.port);
    let out = Command::new("node")
        .arg(peers().join("chromium/publish.mjs"))
        .args(["--page-url", &page, "--codec", "AV1", "--seconds", "1", "--token", "wrong", "--stream", "s"])
        .stderr(Stdio::null())
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("401"), "a wrong token is refused with 401 on the page: {text}");
    server.interrupt();
    server.wait_exit(Duration::from_secs(15));
}

/// Several streams and no `--token`: each stream gets a token of its own, printed for it, and
/// one stream's token opens no other (a leaked token exposes one stream, not the server).
#[test]
fn each_stream_has_a_token_of_its_own() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let args = ["--stream", "a", "--stream", "b", "--stream-token", "b=bee", "--no-facemark"];
    let server = Server::spawn(output_path("app-stream-tokens"), &args, None);
    server.wait_for("Ctrl-C stops", Duration::from_secs(20));
    let printed = server.output.lock().unwrap().clone();
    let token_of = |stream: &str| {
        let line = printed.lines().find(|l| l.ends_with(&format!("(for /whip/{stream})")));
        line.and_then(|l| l.split_whitespace().rev().nth(2))
            .unwrap_or_else(|| panic!("no token for {stream}: {printed}"))
    };
    let a = token_of("a");
    assert_eq!(token_of("b"), "bee");
    assert!(a.len() >= 16 && a != "bee", "{printed}");
    let offer = std::fs::read(data_path("obs_av1.offer.sdp")).unwrap();
    let post = |stream: &str, token: &str| {
        let bearer = format!("Bearer {token}");
        let headers = [("Content-Type", "application/sdp"), ("Authorization", bearer.as_str())];
        http(server.port, "POST", &format!("/whip/{stream}"), &headers, &offer)
    };
    for (stream, token) in [("a", "bee"), ("b", a), ("a", TOKEN)] {
        let refused = post(stream, token);
        assert_eq!(refused.status, 401, "{stream} with {token}: {refused:?}");
    }
    for (stream, token) in [("a", a), ("b", "bee")] {
        let created = post(stream, token);
        assert_eq!(created.status, 201, "{stream}: {created:?}");
        let location = created.header("location").unwrap();
        let deleted = http(server.port, "DELETE", location, &[("Authorization", &format!("Bearer {token}"))], b"");
        assert_eq!(deleted.status, 200, "{deleted:?}");
    }
}
