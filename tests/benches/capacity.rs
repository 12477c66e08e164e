//! `cargo bench -p whipcast-tests --bench capacity [-- [h264|av1] [--n N ...] [--window S] [--most N]
//! [--facemark-property NAME=VALUE ...]]`
//!
//! How many OBS-like 1280x720 30 fps publishers one `whipcast serve` (the release build:
//! `cargo build --release -p whipcast`, `make bench` does it) records and analyses in real time,
//! for H.264 and AV1 (tests/src/capacity/mod.rs says what is measured and what "real time" means).
//! Without `--n` it searches the largest N: 1, 2, 4, ... while real time, then halves the gap.
//! Prints each run's verdict and whipcast's CPU per publisher by stage, then the largest N.
//! `--facemark-property` goes to `whipcast serve` as it is (e.g. iris-interval=2: a lever measured).

use std::time::Duration;

use whipcast_tests::capacity::{self, Codec, STAGES};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let window = Duration::from_secs_f64(value("--window").and_then(|v| v.parse().ok()).unwrap_or(15.0));
    let most: usize = value("--most").and_then(|v| v.parse().ok()).unwrap_or(32);
    let fixed: Vec<usize> = args.windows(2).filter(|w| w[0] == "--n").filter_map(|w| w[1].parse().ok()).collect();
    let serve_args: Vec<String> =
        args.windows(2).filter(|w| w[0] == "--facemark-property").flat_map(|w| w.iter().cloned()).collect();
    let codecs: Vec<Codec> = match (args.iter().any(|a| a == "h264"), args.iter().any(|a| a == "av1")) {
        (true, false) => vec![Codec::H264],
        (false, true) => vec![Codec::Av1],
        _ => vec![Codec::H264, Codec::Av1],
    };
    let release = whipcast_tests::build_dir().parent().unwrap().join("release/whipcast");
    let whipcast = if release.exists() {
        release
    } else {
        eprintln!("{} is missing (cargo build --release -p whipcast): the debug build is measured", release.display());
        whipcast_tests::workspace_binary("whipcast")
    };
    println!(
        "capacity: {} cores, whipcast {} {}, window {window:?}",
        whipcast_tests::cpu::cores(),
        whipcast.display(),
        serve_args.join(" ")
    );

    let mut found = Vec::new();
    for codec in codecs {
        let mut tried: Vec<(usize, bool)> = Vec::new();
        let mut runs = Vec::new();
        loop {
            let n = match fixed.get(tried.len()) {
                Some(n) => *n,
                None if fixed.is_empty() => match capacity::next_n(&tried, most) {
                    Some(n) => n,
                    None => break,
                },
                None => break,
            };
            let run = capacity::run(&whipcast, &serve_args, codec, n, window);
            println!("{}", run.summary());
            tried.push((n, run.verdict.real_time()));
            runs.push(run);
        }
        let best = capacity::largest(&tried);
        let at = best.and_then(|n| runs.iter().find(|r| r.n == n));
        match at {
            Some(run) => {
                let stages: Vec<String> = STAGES
                    .iter()
                    .map(|s| format!("{} {:.1}", s.label(), run.per_publisher(run.stages.get(*s))))
                    .collect();
                found.push(format!(
                    "{}: largest real-time N = {} (decoder {}; whipcast per publisher {:.1} % of a core: {})",
                    codec.name(),
                    run.n,
                    run.decoder,
                    run.per_publisher(run.server),
                    stages.join(", ")
                ));
            }
            None => found.push(format!("{}: not even one publisher in real time", codec.name())),
        }
    }
    for line in found {
        println!("{line}");
    }
}
