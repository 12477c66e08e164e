//! `cargo bench -p whipcast-tests --bench glass_to_glass [-- SECONDS]`
//!
//! Glass-to-glass latency through `whipcast serve` on loopback: headless Chromium publishes a
//! canvas whose every frame carries its own time (a row of blocks) over WHIP (H.264), and
//! watches `/whep/<stream>/source` (forwarded as received) and `/whep/<stream>` (decoded,
//! marked by facemark, H.264 again) in the same page, reading each shown frame's time back
//! (tests/peers/chromium/glass.mjs). Prints the median and 95th percentile age of the frames
//! shown after the first 3 s, per view, against the goals (source 150 ms, annotated 250 ms).

use std::process::Command;

use whipcast_tests::whipcast::{Server, TOKEN};
use whipcast_tests::*;

const GOALS_MS: [(&str, u64); 2] = [("source", 150), ("annotated", 250)];

fn main() {
    let seconds: u32 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test-deps does)");
    let server = Server::start("bench-glass", &[]);
    let out = Command::new("node")
        .arg(peers().join("chromium/glass.mjs"))
        .args(["--server", &format!("http://127.0.0.1:{}", server.port), "--stream", "s", "--token", TOKEN])
        .args(["--seconds", &seconds.to_string()])
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("\"ok\":true"), "glass.mjs failed: {text}");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!("glass to glass, H.264 from headless Chromium through whipcast on loopback, {seconds} s ({cpu})");
    println!("{:<10} {:>7} {:>10} {:>8} {:>8}", "view", "frames", "median ms", "p95 ms", "goal ms");
    for (view, goal) in GOALS_MS {
        let part = text.split(&format!("\"{view}\":")).nth(1).unwrap_or("");
        let number = |key: &str| {
            part.split(&format!("\"{key}\":")).nth(1).and_then(|r| r.split([',', '}']).next()).unwrap_or("-").to_owned()
        };
        println!("{view:<10} {:>7} {:>10} {:>8} {:>8}", number("frames"), number("median_ms"), number("p95_ms"), goal);
    }
    drop(server);
}
