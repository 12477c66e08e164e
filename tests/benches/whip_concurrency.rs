//! `cargo bench -p whipcast-tests --bench whip_concurrency [-- N ... [--window S] [--fragmentsync]]`
//!
//! `--fragmentsync` runs each N twice in a row, recording through `webmmux ! filesink` and
//! through `webmmux ! fragmentsync ! filesink` (what whipcast writes), then again in the other
//! order, and prints what the crash-safe writes cost in server CPU; `--no-fsync` sets
//! `fsync=false` on fragmentsync (whole-unit writes without fsync).
//!
//! N concurrent publishers (default 32; several values run one after the other) of a ~2.5 Mbit/s
//! 1280x720 AV1 stream, each recorded by its own whipcastsrc (one shared port, one stream
//! each) through `rtpav1depay-rs ! av1obufix ! webmmux ! filesink`, all in this process. The
//! publishers are libdatachannel peer connections sending OBS's offer shape and a pre-encoded
//! clip (tests/peers/obs_like/bench_publish.py, one separate process, no live encoding).
//!
//! Once every session is up and sending, it measures over a fixed window (default 20 s) the CPU
//! time of this process (the server: HTTP, ICE, DTLS, SRTP, jitter buffers, depayloaders,
//! muxers, files), of the publishers' process, and of the whole machine, and the loss at the
//! server (whipcastsrc `stats`: RTP packets lost, NACKs sent; rtpav1depay-rs: packets lost,
//! temporal units dropped). Afterwards every WebM file is demuxed and its frames counted against
//! what its publisher sent; the first and the last are also decoded.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::cpu::{machine_busy, process_cpu};
use whipcast_tests::*;

/// Publisher i starts i * GOP / N after the first (bench_publish.py): all are sending after this.
const STAGGER: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(3);

struct Cpu {
    server: Duration,
    publishers: Duration,
    machine_busy: Duration,
    udp_drops: u64,
    wall: Instant,
}

fn server_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was full (machine-wide,
/// /proc/net/snmp RcvbufErrors): loss before any of our code sees the packet.
fn udp_receive_buffer_drops() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors").unwrap();
    values.split_whitespace().nth(column).unwrap().parse().unwrap()
}

fn sample(publisher: u32) -> Cpu {
    Cpu {
        server: server_cpu(),
        publishers: process_cpu(publisher),
        machine_busy: machine_busy(),
        udp_drops: udp_receive_buffer_drops(),
        wall: Instant::now(),
    }
}

/// What whipcastsrc and rtpav1depay-rs of one stream report.
#[derive(Default, Debug, Clone, Copy)]
struct Loss {
    packets_received: u64,
    packets_lost: i64,
    nacks: u64,
    depay_lost: u64,
    depay_dropped: u64,
}

fn loss(pipeline: &gst::Pipeline, i: usize) -> Loss {
    let src = pipeline.by_name(&format!("w{i}")).unwrap();
    let depay = pipeline.by_name(&format!("d{i}")).unwrap();
    let stats = src.property::<gst::Structure>("stats");
    let session = stats.get::<gst::Structure>("session").ok();
    let field = |name: &str| session.as_ref().and_then(|s| s.get::<u64>(name).ok()).unwrap_or(0);
    let depay_stats = depay.property::<gst::Structure>("stats");
    Loss {
        packets_received: field("packets-received"),
        packets_lost: session.as_ref().and_then(|s| s.get::<i64>("packets-lost").ok()).unwrap_or(0),
        nacks: field("nack-count"),
        depay_lost: depay_stats.get::<u64>("packets-lost").unwrap_or(0),
        depay_dropped: depay_stats.get::<u64>("temporal-units-dropped").unwrap_or(0),
    }
}

fn sum(all: &[Loss]) -> Loss {
    all.iter().fold(Loss::default(), |a, l| Loss {
        packets_received: a.packets_received + l.packets_received,
        packets_lost: a.packets_lost + l.packets_lost,
        nacks: a.nacks + l.nacks,
        depay_lost: a.depay_lost + l.depay_lost,
        depay_dropped: a.depay_dropped + l.depay_dropped,
    })
}

fn peers() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/obs_like")
}

fn publishers(port: u16, n: usize, seconds: f64, log: &std::path::Path) -> Child {
    let python = peers().join(".venv/bin/python");
    assert!(python.exists(), "run tests/peers/obs_like/setup.sh first (make test-deps does)");
    Command::new(python)
        .arg(peers().join("bench_publish.py"))
        .args(["--url", &format!("http://127.0.0.1:{port}/whip/bench{{}}")])
        .args(["--count", &n.to_string(), "--seconds", &format!("{seconds:.1}")])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("the publishers start")
}

/// The integers in the JSON array `"key": [...]` of the publishers' report.
fn json_list(text: &str, key: &str) -> Vec<u64> {
    let after = text.split(&format!("\"{key}\": [")).nth(1).unwrap_or_else(|| panic!("{key} missing in {text}"));
    let list = after.split(']').next().unwrap();
    list.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

fn json_number(text: &str, key: &str) -> f64 {
    let after = text.split(&format!("\"{key}\": ")).nth(1).unwrap_or_else(|| panic!("{key} missing in {text}"));
    after.split([',', '}']).next().unwrap().trim().parse().unwrap()
}

/// Frames (blocks) in a WebM file's video track.
fn demuxed_frames(path: &std::path::Path) -> usize {
    let read = read_file(path, "matroskademux ! video/x-av1");
    assert!(read.report.errors.is_empty(), "{}: {:?}", path.display(), read.report.errors);
    read.frames
}

/// Stops the server pipeline however `run` ends (a panic included).
struct Stop(gst::Pipeline);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Runs N publishers; returns the server's CPU over the window (% of one core).
fn run(n: usize, window: Duration, fragmentsync: Option<&str>) -> f64 {
    init();
    let port = free_port();
    let files: Vec<PathBuf> = (0..n).map(|i| output_path(&format!("concurrency-{n}-{i}.webm"))).collect();
    let mut launch = String::new();
    for (i, file) in files.iter().enumerate() {
        launch += &format!(
            "whipcastsrc name=w{i} address=127.0.0.1 port={port} stream=bench{i} timeout=5 max-posts-per-address=0 \
             w{i}.video_0 ! rtpav1depay-rs name=d{i} ! av1obufix ! webmmux ! {}filesink location={} ",
            fragmentsync.unwrap_or_default(),
            file.display()
        );
    }
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    for i in 0..n {
        let started = started.clone();
        pipeline.by_name(&format!("w{i}")).unwrap().connect("session-started", false, move |_| {
            started.fetch_add(1, Ordering::SeqCst);
            None
        });
    }
    let _stop = Stop(pipeline.clone());
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let check_bus = || {
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = msg.view() {
                panic!("server pipeline: {} {:?}", e.error(), e.debug());
            }
        }
    };

    let seconds = (STAGGER + SETTLE + window).as_secs_f64() + 2.0;
    let log = output_path(&format!("concurrency-{n}-publishers.log"));
    let mut child = publishers(port, n, seconds, &log);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.load(Ordering::SeqCst) < n {
        check_bus();
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("{} of {n} sessions started; publishers' log: {}", started.load(Ordering::SeqCst), log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The publishers start sending once all are connected, staggered over one GOP.
    let connected = Instant::now();
    while (0..n).any(|i| loss(&pipeline, i).packets_received == 0) && connected.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(STAGGER + SETTLE);
    check_bus();

    let before = sample(pid);
    let loss_before: Vec<Loss> = (0..n).map(|i| loss(&pipeline, i)).collect();
    std::thread::sleep(window);
    let after = sample(pid);
    let loss_after: Vec<Loss> = (0..n).map(|i| loss(&pipeline, i)).collect();
    check_bus();

    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success() && out.contains("\"ok\": true"), "publishers failed: {out} (log: {})", log.display());
    let eos =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(20), &[gst::MessageType::Eos, gst::MessageType::Error]);
    assert!(
        matches!(eos.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))),
        "no EOS after the DELETEs: {eos:?}"
    );
    let depay_totals: Vec<Loss> = (0..n).map(|i| loss(&pipeline, i)).collect();
    pipeline.set_state(gst::State::Null).unwrap();

    let sent = json_list(&out, "framesSent");
    let bytes = json_list(&out, "bytesSent");
    let frames: Vec<usize> = files.iter().map(|f| demuxed_frames(f)).collect();
    let complete = frames.iter().zip(&sent).filter(|(got, sent)| **got as u64 == **sent).count();
    let decoded: Vec<(usize, usize)> = [0, n - 1]
        .into_iter()
        .take(n.min(2))
        .map(|i| {
            let d = decode_file(&files[i]);
            assert!(d.report.errors.is_empty(), "{}: {:?}", files[i].display(), d.report.errors);
            (i, d.frames)
        })
        .collect();

    let wall = after.wall.duration_since(before.wall).as_secs_f64();
    let percent = |d: Duration| d.as_secs_f64() / wall * 100.0;
    let server = percent(after.server - before.server);
    let pubs = percent(after.publishers - before.publishers);
    let machine = percent(after.machine_busy - before.machine_busy);
    let window_loss = Loss {
        packets_received: sum(&loss_after).packets_received - sum(&loss_before).packets_received,
        packets_lost: sum(&loss_after).packets_lost - sum(&loss_before).packets_lost,
        nacks: sum(&loss_after).nacks - sum(&loss_before).nacks,
        ..Default::default()
    };
    let session_loss = sum(&loss_after);
    let depay = sum(&depay_totals);
    let mbps = bytes.iter().sum::<u64>() as f64 * 8.0 / (sent.iter().sum::<u64>() as f64 / 30.0) / 1e6;
    println!(
        "N={n}: {n} publishers x {mbps:.2} Mbit/s AV1 1280x720 30 fps (clip {:.0} kbit/s), window {wall:.1} s, {} packets/s at the server",
        json_number(&out, "clipKbps"),
        (window_loss.packets_received as f64 / wall).round()
    );
    println!(
        "  CPU (% of one core): server {server:.1} total, {:.2} per publisher; publishers' process {pubs:.1}; \
         whole machine {machine:.1} of {}00 (others {:.1})",
        server / n as f64,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        (machine - server - pubs).max(0.0)
    );
    println!(
        "  loss at the server: RTP packets missing (webrtcbin packets-lost, before NACK repair) {} in the window, \
         {} since the sessions started; {} NACKs sent in the window; UDP receive-buffer drops on the machine {}; \
         after the jitter buffer (rtpav1depay-rs): \
         {} packets lost, {} temporal units dropped; publishers: {} frames sent > 20 ms late (max {} ms)",
        window_loss.packets_lost,
        session_loss.packets_lost,
        window_loss.nacks,
        after.udp_drops - before.udp_drops,
        depay.depay_lost,
        depay.depay_dropped,
        json_number(&out, "lateFrames"),
        json_number(&out, "maxLateMs")
    );
    println!(
        "  recordings: {complete}/{n} WebM files hold every frame sent ({} of {} frames); decoded: {}",
        frames.iter().sum::<usize>(),
        sent.iter().sum::<u64>(),
        decoded.iter().map(|(i, f)| format!("#{i} {f}/{} frames", sent[*i])).collect::<Vec<_>>().join(", ")
    );
    for file in &files {
        let _ = std::fs::remove_file(file);
    }
    server
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut window = Duration::from_secs(20);
    let mut counts = Vec::new();
    let mut compare = false;
    let mut fsync = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--window" => {
                window = Duration::from_secs(it.next().and_then(|s| s.parse().ok()).expect("--window SECONDS"))
            }
            "--fragmentsync" => compare = true,
            "--no-fsync" => fsync = false,
            other => counts.extend(other.parse::<usize>().ok().filter(|&n| n > 0)),
        }
    }
    if counts.is_empty() {
        counts.push(32);
    }
    for n in counts {
        if !compare {
            run(n, window, None);
            continue;
        }
        let synced_chain = if fsync { "fragmentsync ! " } else { "fragmentsync fsync=false ! " };
        // Both orders, so that a drift of the machine's load counts against each alike.
        let mut plain = Vec::new();
        let mut synced = Vec::new();
        for order in [[false, true], [true, false]] {
            for fragmentsync in order {
                let chain = fragmentsync.then_some(synced_chain);
                println!("-- webmmux ! {}filesink", chain.unwrap_or_default());
                let cpu = run(n, window, chain);
                if fragmentsync { synced.push(cpu) } else { plain.push(cpu) }
            }
        }
        let (plain, synced) = (plain.iter().sum::<f64>() / 2.0, synced.iter().sum::<f64>() / 2.0);
        println!(
            "N={n}: server CPU {plain:.1} % of one core writing as it comes, {synced:.1} % through fragmentsync: \
             ratio {:.3} ({:+.1} %)",
            synced / plain,
            (synced / plain - 1.0) * 100.0
        );
    }
}
