//! `cargo bench -p whipcast-tests --bench whip_post [-- N]`
//!
//! Time from POSTing an OBS-shaped offer (no candidates) to the 201 with the complete answer, on
//! loopback, N times (default 100; each session is DELETEd before the next POST). Prints the
//! median, the 90th percentile and the first POST (the first webrtcbin of the process; the DTLS
//! certificate is made when the element starts).

use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::*;

fn main() {
    init();
    let n = std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()).unwrap_or(100);
    let port = free_port();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("whipcastsrc")
        .property("address", "127.0.0.1")
        .property("port", u32::from(port))
        .property_from_str("on-disconnect", "wait")
        // One client POSTing back to back: measured, not rate limited.
        .property("max-posts-per-address", 0u32)
        .build()
        .unwrap();
    pipeline.add(&src).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();

    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let r = http(port, "POST", "/whip/live", &[("Content-Type", "application/sdp")], OBS_OFFER.as_bytes());
        let took = start.elapsed();
        assert_eq!(r.status, 201, "{r:?}");
        assert!(r.body.contains("a=candidate:"));
        times.push(took);
        let _ = http(port, "DELETE", r.header("location").unwrap(), &[], b"");
        std::thread::sleep(Duration::from_millis(20));
    }
    pipeline.set_state(gst::State::Null).unwrap();

    let first = times[0];
    let mut sorted = times.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("POST -> 201 on loopback, {n} sessions (OBS-shaped offer, host candidates only)");
    println!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms, first {:.1} ms (goal: median < 50 ms)",
        ms(sorted[n / 2]),
        ms(sorted[n * 9 / 10]),
        ms(sorted[n - 1]),
        ms(first)
    );
}
