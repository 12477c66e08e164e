//! Round trip with a payloader written by others: av1enc ! av1parse ! rtpav1pay (gst-plugins-rs)
//! ! rtpav1depay-rs ! av1obufix ! webmmux | matroskamux | mp4mux, then demux and decode.
//! Also the same stream with packets lost and duplicated.

use std::sync::OnceLock;

use whipcast_tests::*;

const FRAMES: u32 = 90;
const GOP: u32 = 15;
const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;

/// Encoded once per test binary; a small MTU makes key frames span many packets.
fn stream() -> &'static [TimedPacket] {
    static STREAM: OnceLock<Vec<TimedPacket>> = OnceLock::new();
    STREAM.get_or_init(|| encode_av1_rtp(FRAMES, WIDTH, HEIGHT, GOP, 400))
}

fn record(muxer: &str, extension: &str) {
    let out = output_path(&format!("roundtrip.{extension}"));
    let report = replay(
        stream(),
        &av1_rtp_caps(),
        &format!("rtpav1depay-rs ! av1obufix ! {muxer} ! filesink location={}", out.display()),
    );
    assert!(report.errors.is_empty(), "{muxer}: {:?}", report.errors);

    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{muxer}: {:?}", decoded.report.errors);
    assert_eq!(decoded.frames, FRAMES as usize, "{muxer}: decoded frames");
    let caps = decoded.caps.expect("decoded caps");
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<i32>("width").unwrap(), WIDTH as i32);
    assert_eq!(s.get::<i32>("height").unwrap(), HEIGHT as i32);

    let info = discover(&out);
    assert!(info.contains("AV1"), "{muxer}: {info}");
    assert!(info.contains(&format!("Width: {WIDTH}")), "{muxer}: {info}");
    assert!(info.contains(&format!("Height: {HEIGHT}")), "{muxer}: {info}");
    let duration = discovered_duration(&info).expect("a duration");
    let expected = f64::from(FRAMES) / 30.0;
    assert!((duration - expected).abs() < 0.05, "{muxer}: duration {duration}, expected {expected}");
}

#[test]
fn the_payloader_fragments_key_frames() {
    // The test below is only as good as its input: W=1 fragments across several packets.
    let continued = |p: &&TimedPacket| p.data.len() > 12 && p.data[12] & 0x80 != 0;
    let fragments = stream().iter().filter(continued).count();
    assert!(fragments > FRAMES as usize, "{fragments} continuation packets");
}

#[test]
fn webmmux_recording_decodes_every_frame() {
    record("webmmux", "webm");
}

#[test]
fn matroskamux_recording_decodes_every_frame() {
    record("matroskamux", "mkv");
}

#[test]
fn mp4mux_recording_decodes_every_frame() {
    record("mp4mux", "mp4");
}

/// Drops packets (seeded; in bursts of `burst`) and duplicates some; returns the damaged stream
/// and the frame index of every dropped packet.
fn damage(seed: u64, p: f64, burst: usize) -> (Vec<TimedPacket>, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    let mut skip = 0;
    for packet in stream() {
        if skip > 0 || rng.chance(p) {
            skip = if skip > 0 { skip - 1 } else { burst - 1 };
            dropped.push(frame_index(packet.pts));
            continue;
        }
        out.push(packet.clone());
        if rng.chance(0.03) {
            out.push(packet.clone());
        }
    }
    (out, dropped)
}

fn frame_index(pts: gst::ClockTime) -> u64 {
    let frame_ns = 1_000_000_000u64 / 30;
    (pts.nseconds() + frame_ns / 2) / frame_ns
}

#[test]
fn loss_gives_no_decoder_error_and_decoding_resumes_at_key_frames() {
    for (seed, p, burst) in [(11, 0.01, 1), (12, 0.05, 1), (13, 0.20, 1), (14, 0.02, 6), (15, 0.0, 1)] {
        let (damaged, dropped) = damage(seed, p, burst);
        let (frames, report) = collect(&damaged, &av1_rtp_caps(), "rtpav1depay-rs ! av1obufix ! av1dec");
        assert!(report.errors.is_empty(), "seed {seed}: {:?}", report.errors);
        assert!(report.warnings.is_empty(), "seed {seed}: {:?}", report.warnings);
        // Within each GOP, the frames before the first damaged one decode; from there on
        // nothing is pushed until the next key frame, where decoding resumes.
        let expected: Vec<u64> = (0..u64::from(FRAMES))
            .filter(|&f| {
                let gop_start = f - f % u64::from(GOP);
                !dropped.iter().any(|&d| d >= gop_start && d <= f)
            })
            .collect();
        let decoded: Vec<u64> = frames.iter().map(|f| frame_index(f.pts().unwrap())).collect();
        assert_eq!(decoded, expected, "seed {seed}: frames decoded; lost packets in frames {dropped:?}");
        if p > 0.0 {
            assert!(!dropped.is_empty() && decoded.len() < FRAMES as usize, "seed {seed}");
        }
    }
}
