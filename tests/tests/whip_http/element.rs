//! whipcastsrc as a GStreamer element: what its pad-added handlers may do, and its errors on the
//! bus (a port in use, EOS before any publisher).

use gst::prelude::*;
use whipcast_tests::*;

use crate::support::{post, serve, serve_with};

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
