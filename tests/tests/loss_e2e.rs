//! Packet loss between a real publisher and whipcastsrc: gst-plugins-rs `whipsink` or the
//! OBS-like libdatachannel publisher (each in its own process) publishes through a relay on
//! loopback (`whipcast_tests::relay`) that drops video packets, seeded, scattered or in bursts.
//! whipcastsrc (`output=encoded`) records. With retransmissions dropped too (NACK defeated),
//! the file decodes with no error in ffmpeg and holds exactly the frames of every GOP up to its
//! first damaged frame: the publisher reports its key frames, the relay which frames lost a
//! packet. With retransmissions let through, NACK repairs every loss and nothing is missing.

use std::sync::Mutex;

use gst::prelude::*;
use whipcast_tests::relay::{Loss, Nack, WhipRelay, decodable_frames};
use whipcast_tests::*;

/// One publisher at a time: the machine has 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

const SECONDS: &str = "6";

#[derive(Clone, Copy)]
enum Publisher {
    /// whip-publish --sink whipsink (its webrtcbin offers no NACK: nothing is ever retransmitted).
    Whipsink,
    /// OBS's WHIP output: NACK responder on the same SSRC (no RTX), PLI ignored.
    ObsLike,
}

struct Codec {
    name: &'static str,
    /// whipcastsrc properties and what follows its video pad.
    tail: &'static str,
    extension: &'static str,
}

const AV1: Codec = Codec { name: "av1", tail: "w.video_0 ! webmmux ! filesink location=FILE", extension: "webm" };
const H264: Codec =
    Codec { name: "h264", tail: "w.video_0 ! h264parse ! mp4mux ! filesink location=FILE", extension: "mp4" };
const H265: Codec = Codec {
    name: "h265",
    tail: "video-codecs=H265 w.video_0 ! h265parse ! mp4mux ! filesink location=FILE",
    extension: "mp4",
};
const VP8: Codec = Codec { name: "vp8", tail: "w.video_0 ! webmmux ! filesink location=FILE", extension: "webm" };

fn run(publisher: Publisher, codec: &Codec, loss: Loss, nack: Nack, seed: u64) {
    run_with_timeout(publisher, codec, loss, nack, seed, 3);
}

/// `timeout`: whipcastsrc's, in seconds (no media for that long ends the session).
fn run_with_timeout(publisher: Publisher, codec: &Codec, loss: Loss, nack: Nack, seed: u64, timeout: u32) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    init();
    let port = free_port();
    let file = output_path(&format!("loss-e2e-{}-{seed}.{}", codec.name, codec.extension));
    let launch = format!(
        "whipcastsrc name=w address=127.0.0.1 port={port} timeout={timeout} output=encoded {}",
        codec
            .tail
            .replace("FILE", &file.display().to_string())
            .replace("w.video_0 !", "w.video_0 ! identity name=out !")
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    // The frames whipcastsrc output (by PTS), to show where they differ from the model's.
    let output = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = output.clone();
    pipeline.by_name("out").unwrap().static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            seen.lock().unwrap().push(pts);
        }
        gst::PadProbeReturn::Ok
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let relay = WhipRelay::start(port, loss, nack, seed);
    // The session's own statistics (whipcastsrc `stats`), as last seen while it was live.
    let session_stats = std::sync::Arc::new(Mutex::new(String::new()));
    let polling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let (w, stats, polling) = (pipeline.by_name("w").unwrap(), session_stats.clone(), polling.clone());
        std::thread::spawn(move || {
            while polling.load(std::sync::atomic::Ordering::Relaxed) {
                let s = w.property::<gst::Structure>("stats").to_string();
                if s.contains("packets-received") {
                    *stats.lock().unwrap() = s;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
    }
    let url = relay.url("/whip/live");
    let text = report(spawn(&mut match publisher {
        Publisher::Whipsink => {
            let mut c = whip_publish_command(&url);
            c.args(["--sink", "whipsink", "--codec", codec.name, "--seconds", SECONDS]);
            c
        }
        Publisher::ObsLike => {
            let mut c = obs_like_command();
            c.args(["--url", &url, "--codec", &codec.name.to_uppercase(), "--seconds", SECONDS]);
            // As OBS, the DELETE right after the last frame: the session drains what it holds.
            c.args(["--start-at-keyframe"]);
            c
        }
    }));
    // The publisher's DELETE ends the session.
    let bus = pipeline.bus().unwrap();
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos, gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))), "{msg:?}");

    polling.store(false, std::sync::atomic::Ordering::Relaxed);
    let frames = relay.frames_sent();
    let keys: Vec<bool> = match publisher {
        Publisher::Whipsink => {
            let keys = json_u64_list(&text, "key_timestamps");
            frames.iter().map(|f| keys.contains(&u64::from(f.timestamp))).collect()
        }
        Publisher::ObsLike => {
            // The relay sees every frame sent (it logs packets before dropping them), in order.
            assert_eq!(frames.len() as u64, json_u64(&text, "framesSent"), "{text}");
            let keys = json_u64_list(&text, "keyFrameIndexes");
            (0..frames.len()).map(|i| keys.contains(&(i as u64))).collect()
        }
    };
    let expected = decodable_frames(keys.iter().zip(&frames).map(|(&key, f)| (key, f.damaged)));
    let lost = relay.video_packets().iter().filter(|p| p.lost).count();
    // Sequence numbers the publisher never sent (dropped before the network).
    let unsent: u64 = relay
        .video_packets()
        .windows(2)
        .map(|w| u64::from(w[1].seq.wrapping_sub(w[0].seq).saturating_sub(1)).min(1000))
        .sum();
    let damaged = frames.iter().filter(|f| f.damaged).count();
    let (dropped, passed) = relay.retransmissions();
    let decoded = ffmpeg_decode(&file);
    let context = format!(
        "{} {loss:?} {nack:?} seed {seed}: {} frames sent ({} key), {lost} packets lost, {damaged} frames damaged, \
         retransmissions {dropped} dropped {passed} passed, {unsent} never sent: {} frames expected, {} decoded",
        codec.name,
        frames.len(),
        keys.iter().filter(|&&k| k).count(),
        expected.len(),
        decoded.video_frames,
    );
    eprintln!("{context}");
    assert!(lost > 0 && !expected.is_empty(), "{context}");
    if nack == Nack::Repairs {
        let unrepaired: Vec<u16> =
            relay.video_packets().iter().filter(|p| p.lost && !p.repaired).map(|p| p.seq).collect();
        assert!(unrepaired.is_empty(), "{context}: never retransmitted: {unrepaired:?}");
    }
    assert!(decoded.errors.is_empty(), "{context}: {:?}", decoded.errors);
    if decoded.video_frames != expected.len() as u64 {
        // Frame indexes relative to the first: the model's, and whipcastsrc's output by PTS.
        let first = expected[0];
        let model: Vec<usize> = expected.iter().map(|i| i - first).collect();
        let output = output.lock().unwrap();
        let out: Vec<u64> =
            output.iter().map(|p| (p.nseconds() - output[0].nseconds() + 16_666_667) / 33_333_333).collect();
        let marks: String = keys
            .iter()
            .zip(&frames)
            .skip(first)
            .map(|(k, f)| match (k, f.damaged) {
                (_, true) => 'x',
                (true, false) => 'K',
                _ => '.',
            })
            .collect();
        let stats = session_stats.lock().unwrap();
        panic!(
            "{context}\n  sent from the first kept: {marks}\n  model  {model:?}\n  output {out:?}\n  session {stats}"
        );
    }
    let _ = std::fs::remove_file(&file);
}

fn every_pattern(publisher: Publisher, codec: &Codec) {
    for (loss, seed) in [(Loss::Scattered(0.01), 21), (Loss::Scattered(0.05), 22), (Loss::Bursts(0.01), 23)] {
        run(publisher, codec, loss, Nack::Defeated, seed);
    }
}

#[test]
fn whipsink_av1_through_a_lossy_network_records_only_decodable_frames() {
    every_pattern(Publisher::Whipsink, &AV1);
}

#[test]
fn whipsink_h264_through_a_lossy_network_records_only_decodable_frames() {
    every_pattern(Publisher::Whipsink, &H264);
}

#[test]
fn whipsink_h265_through_a_lossy_network_records_only_decodable_frames() {
    every_pattern(Publisher::Whipsink, &H265);
}

#[test]
fn whipsink_vp8_through_a_lossy_network_records_only_decodable_frames() {
    every_pattern(Publisher::Whipsink, &VP8);
}

#[test]
fn obs_like_av1_with_nack_defeated_records_only_decodable_frames() {
    run(Publisher::ObsLike, &AV1, Loss::Scattered(0.05), Nack::Defeated, 31);
}

#[test]
fn obs_like_h264_with_nack_defeated_records_only_decodable_frames() {
    run(Publisher::ObsLike, &H264, Loss::Bursts(0.01), Nack::Defeated, 32);
}

/// Packets keep coming while nothing is decodable for 4 s (a key frame lost, PLI ignored): the
/// publisher is live, so a 2 s `timeout` does not end its session, and the next key frame on is
/// recorded.
#[test]
fn obs_like_h264_undecodable_for_longer_than_the_timeout_stays_live() {
    run_with_timeout(Publisher::ObsLike, &H264, Loss::Frames { first: 3, end: 120 }, Nack::Defeated, 35, 2);
}

/// The server asks for every lost packet in time (whipcastsrc's RTCP feedback timing): with
/// retransmissions let through, no frame stays damaged and every frame sent is recorded.
#[test]
fn obs_like_av1_loss_repaired_by_nack_loses_no_frame() {
    run(Publisher::ObsLike, &AV1, Loss::Scattered(0.05), Nack::Repairs, 33);
}

#[test]
fn obs_like_h264_loss_repaired_by_nack_loses_no_frame() {
    run(Publisher::ObsLike, &H264, Loss::Bursts(0.01), Nack::Repairs, 34);
}
