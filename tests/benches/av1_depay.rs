//! `cargo bench -p whipcast-tests --bench av1_depay [-- LOOPS]`
//!
//! Replays the Chromium AV1 capture, looped (default 200 times, sequence numbers and timestamps
//! continued), from an RFC 4571 file through three chains in the same process, interleaved:
//!   bare:   filesrc ! rtpstreamdepay ! fakesink
//!   ours:   ... ! rtpav1depay-rs ! av1obufix ! fakesink
//!   theirs: ... ! rtpav1depay ! av1parse ! fakesink          (gst-plugins-rs 0.15)
//! and prints the process CPU time each chain adds over the bare replay, per packet.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gst::prelude::*;
use whipcast_tests::*;

const ROUNDS: usize = 5;

fn cpu_time() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Writes the capture looped `loops` times as an RFC 4571 stream (u16 length + packet).
fn looped_stream(loops: usize) -> (std::path::PathBuf, usize) {
    let packets = read_lenrtp(&data_path("chrome_av1.lenrtp"));
    let seq0 = u16::from_be_bytes([packets[0][2], packets[0][3]]);
    let ts: Vec<u32> = packets.iter().map(|p| u32::from_be_bytes(p[4..8].try_into().unwrap())).collect();
    let distinct = ts.iter().collect::<std::collections::BTreeSet<_>>().len() as u32;
    let span = ts[ts.len() - 1].wrapping_sub(ts[0]);
    let step = span + span / (distinct - 1).max(1);
    let path = std::env::temp_dir().join(format!("whipcast-bench-{loops}.rtp"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut n = 0u32;
    for l in 0..loops as u32 {
        for (p, t) in packets.iter().zip(&ts) {
            let mut q = p.clone();
            q[2..4].copy_from_slice(&(seq0.wrapping_add(n as u16)).to_be_bytes());
            q[4..8].copy_from_slice(&t.wrapping_add(l.wrapping_mul(step)).to_be_bytes());
            out.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
            out.write_all(&q).unwrap();
            n += 1;
        }
    }
    out.flush().unwrap();
    (path, n as usize)
}

/// Runs one chain over the stream; returns CPU seconds and buffers reaching the sink.
fn run(stream: &std::path::Path, chain: &str) -> (f64, usize) {
    let launch = format!(
        "filesrc location={} blocksize=65536 ! application/x-rtp-stream,media=video,clock-rate=90000,encoding-name=AV1,payload=45 \
         ! rtpstreamdepay {chain} ! fakesink name=sink sync=false",
        stream.display()
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    pipeline.by_name("sink").unwrap().static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        c.fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    let start = cpu_time();
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(600));
    let cpu = cpu_time() - start;
    assert!(report.errors.is_empty(), "{chain}: {:?}", report.errors);
    (cpu, count.load(Ordering::Relaxed))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    init();
    let loops = std::env::args().skip(1).find_map(|a| a.parse::<usize>().ok()).unwrap_or(200);
    let (stream, packets) = looped_stream(loops);
    let chains = [
        ("bare", ""),
        ("ours: rtpav1depay-rs ! av1obufix", "! rtpav1depay-rs ! av1obufix"),
        ("theirs: rtpav1depay ! av1parse", "! rtpav1depay ! av1parse"),
    ];
    let mut times = vec![Vec::new(); chains.len()];
    let mut outputs = vec![0; chains.len()];
    run(&stream, chains[0].1); // warm the page cache
    for _ in 0..ROUNDS {
        for (i, (_, chain)) in chains.iter().enumerate() {
            let (cpu, out) = run(&stream, chain);
            times[i].push(cpu);
            outputs[i] = out;
        }
    }
    std::fs::remove_file(&stream).ok();

    let bare = median(times[0].clone());
    println!("{packets} packets ({loops} loops of the Chromium capture), median of {ROUNDS} interleaved rounds");
    println!("{:<36} {:>10} {:>12} {:>16}", "chain", "CPU s", "buffers out", "added us/packet");
    let mut added = Vec::new();
    for (i, (name, _)) in chains.iter().enumerate() {
        let t = median(times[i].clone());
        let per_packet = (t - bare) * 1e6 / packets as f64;
        added.push(per_packet);
        println!("{name:<36} {t:>10.3} {:>12} {:>16.3}", outputs[i], if i == 0 { 0.0 } else { per_packet });
    }
    let ratio = added[1] / added[2];
    println!("ours / theirs (added CPU): {ratio:.3} (goal <= 0.333)");
}
