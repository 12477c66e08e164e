//! The real Chromium capture (tests/data/chrome_av1.lenrtp: 1823 packets, 566 temporal units,
//! 176 padding-only packets, W=1 fragments without size fields, one W=2 sequence header packet)
//! through our elements and through gst-plugins-rs's.

use gst::prelude::*;
use whipcast_tests::*;

const TEMPORAL_UNITS: usize = 566;

fn capture() -> Vec<TimedPacket> {
    timed_from_rtp(read_lenrtp(&data_path("chrome_av1.lenrtp")), 90_000)
}

fn caps() -> gst::Caps {
    let mut caps = av1_rtp_caps();
    caps.make_mut().set("payload", 45i32);
    caps
}

#[test]
fn ours_gives_every_tu_equal_to_gst_plugins_rs_rtpav1depay_and_av1parse() {
    let packets = capture();
    let (ours, report) = collect(&packets, &caps(), "rtpav1depay-rs ! av1obufix");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(ours.len(), TEMPORAL_UNITS);

    let (theirs, report) =
        collect(&packets, &caps(), "rtpav1depay ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(theirs.len(), TEMPORAL_UNITS);

    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let a = a.map_readable().unwrap();
        let b = b.map_readable().unwrap();
        assert_eq!(normalized_obus(&a), normalized_obus(&b), "temporal unit {i}");
    }
    // Timestamps and key-frame flags agree too.
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.pts(), b.pts(), "pts of temporal unit {i}");
        assert_eq!(
            a.flags().contains(gst::BufferFlags::DELTA_UNIT),
            b.flags().contains(gst::BufferFlags::DELTA_UNIT),
            "key frame flag of temporal unit {i}"
        );
    }
    // Every TU is container-ready: starts with one temporal delimiter, minimal sizes.
    for buffer in &ours {
        let map = buffer.map_readable().unwrap();
        assert_eq!(&map[..2], &[0x12, 0x00]);
        let obus: Vec<_> = gstav1rtp::av1::obu::Obus::new(&map, false).map(Result::unwrap).collect();
        assert!(obus.iter().all(|o| o.is_canonical()));
        assert_eq!(obus.iter().filter(|o| o.header.obu_type() == 2).count(), 1);
    }
}

#[test]
fn webm_recording_decodes_every_frame_and_discoverer_agrees() {
    let out = output_path("chrome.webm");
    let report = replay(
        &capture(),
        &caps(),
        &format!("rtpav1depay-rs ! av1obufix ! webmmux ! filesink location={}", out.display()),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let decoded = decode_file(&out);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert!(decoded.report.warnings.is_empty(), "{:?}", decoded.report.warnings);
    assert_eq!(decoded.frames, TEMPORAL_UNITS);

    let info = discover(&out);
    assert!(info.contains("AV1"), "{info}");
    assert!(info.contains("Width: 1280") && info.contains("Height: 720"), "{info}");
    assert!(info.contains("Frame rate: 20/1"), "{info}");
    let duration = discovered_duration(&info).expect("a duration");
    assert!((duration - 28.2).abs() < 0.2, "duration {duration}");
}

#[test]
fn rfc4571_file_without_timestamps_records_too() {
    // The path of pipelines/rtp-av1-to-webm.sh: filesrc ! rtpstreamdepay gives no timestamps;
    // the depayloader stamps TUs from RTP time.
    let stream = chrome_capture_rfc4571("chrome.rtp");
    let out = output_path("chrome-from-file.webm");
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! application/x-rtp-stream,media=video,clock-rate=90000,encoding-name=AV1 \
         ! rtpstreamdepay ! rtpav1depay-rs ! av1obufix ! webmmux ! filesink location={}",
        stream.display(),
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(60));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(decode_file(&out).frames, TEMPORAL_UNITS);
    let duration = discovered_duration(&discover(&out)).unwrap();
    assert!((duration - 28.2).abs() < 0.2, "duration {duration}");
}

/// Drops packets with probability `p` (and in bursts when `burst` > 1), duplicates some.
fn damaged(packets: &[TimedPacket], seed: u64, p: f64, burst: usize) -> (Vec<TimedPacket>, usize) {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut skip = 0;
    let mut first_loss = None;
    for (i, packet) in packets.iter().enumerate() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if i > 0 && rng.chance(p) {
            first_loss.get_or_insert(i);
            skip = burst - 1;
            continue;
        }
        out.push(packet.clone());
        if rng.chance(0.02) {
            out.push(packet.clone());
        }
    }
    (out, first_loss.unwrap_or(packets.len()))
}

#[test]
fn loss_and_duplicates_never_reach_the_decoder_as_errors() {
    let packets = capture();
    for (seed, p, burst) in [(1, 0.01, 1), (2, 0.05, 1), (3, 0.20, 1), (4, 0.01, 8)] {
        let (damaged, first_loss) = damaged(&packets, seed, p, burst);
        let (frames, report) = collect(&damaged, &caps(), "rtpav1depay-rs ! av1obufix ! av1dec");
        assert!(report.errors.is_empty(), "seed {seed}: {:?}", report.errors);
        assert!(report.warnings.is_empty(), "seed {seed}: {:?}", report.warnings);
        // The capture has one key frame, at the start: frames decode up to the first loss and
        // nothing undecodable follows it.
        let tus_before_loss = {
            let ts = |i: usize| u32::from_be_bytes(packets[i].data[4..8].try_into().unwrap());
            let loss_ts = ts(first_loss.min(packets.len() - 1));
            let mut seen = std::collections::BTreeSet::new();
            for pk in &packets[..first_loss] {
                if pk.data.len() > 12 && pk.data[1] & 0x80 != 0 {
                    seen.insert(u32::from_be_bytes(pk.data[4..8].try_into().unwrap()));
                }
            }
            seen.into_iter().filter(|t| *t != loss_ts).count()
        };
        assert!(frames.len() <= tus_before_loss + 1, "seed {seed}: {} frames", frames.len());
        assert!(frames.len() + 1 >= tus_before_loss, "seed {seed}: {} of {tus_before_loss}", frames.len());
    }
}
