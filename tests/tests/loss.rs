//! Packet loss on every codec: real encoders and payloaders, packets dropped on the way (seeded,
//! scattered or in bursts), then `rtpframegate ! <stock depayloader>` into a file. The file
//! decodes with no error in ffmpeg and holds exactly the frames of every GOP up to its first
//! damaged frame (the gate drops the rest of that GOP, asks for a key frame, and goes on).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use whipcast_tests::relay::{Dropper, Loss, decodable_frames};
use whipcast_tests::*;

const FRAMES: u32 = 240;
const FPS: u64 = 30;

struct Codec {
    name: &'static str,
    encode: &'static str,
    pay: &'static str,
    depay: &'static str,
    mux: &'static str,
}

const H264: Codec = Codec {
    name: "h264",
    encode: "x264enc speed-preset=ultrafast tune=zerolatency bframes=0 aud=false option-string=scenecut=0:repeat-headers=0 key-int-max=30 bitrate=1500",
    pay: "rtph264pay config-interval=-1 mtu=1200",
    depay: "rtph264depay ! h264parse",
    mux: "mp4mux",
};
/// Closed GOPs: the key frames x265 makes on request are then IDRs, which the payloader sends after
/// VPS/SPS/PPS, as WebRTC publishers do. (An open-GOP CRA alone, right after a loss, cannot be told
/// from one whose parameter sets were lost: see framegate's unit tests.)
const H265: Codec = Codec {
    name: "h265",
    encode: "x265enc speed-preset=ultrafast tune=zerolatency key-int-max=30 option-string=scenecut=0:bframes=0:open-gop=0 bitrate=1500",
    pay: "rtph265pay config-interval=-1 mtu=1200",
    depay: "rtph265depay ! h265parse",
    mux: "mp4mux",
};
const VP8: Codec = Codec {
    name: "vp8",
    encode: "vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=1500000",
    pay: "rtpvp8pay mtu=1200",
    depay: "rtpvp8depay",
    mux: "webmmux",
};
const VP9: Codec = Codec {
    name: "vp9",
    encode: "vp9enc deadline=1 cpu-used=8 keyframe-max-dist=30 target-bitrate=1500000",
    pay: "rtpvp9pay mtu=1200",
    depay: "rtpvp9depay",
    mux: "webmmux",
};

#[derive(Default)]
struct Seen {
    /// Frame index -> key frame, as the encoder made them (forced key frames included).
    keys: BTreeMap<u64, bool>,
    /// Frame indexes with at least one packet lost.
    damaged: Vec<u64>,
    /// The first frame's PTS and RTP time (encoders may shift PTS, e.g. x264enc by 1000 h).
    first_pts: Option<gst::ClockTime>,
    first_rtp: Option<u32>,
    packets: u64,
    lost: u64,
    /// Every packet sent: frame index, sequence number, marker, lost, its first payload bytes.
    sent: Vec<(u64, u16, bool, bool, Vec<u8>)>,
    /// Frame indexes of the packets the gate passed on.
    passed: std::collections::BTreeSet<u64>,
}

/// The frame indexes a loss-safe receiver keeps (a frame is damaged when a packet of it other
/// than a lone delimiter is lost).
fn expected_frames(seen: &Seen) -> Vec<u64> {
    let frames: Vec<u64> = seen.keys.keys().copied().collect();
    let kept = decodable_frames(seen.keys.iter().map(|(frame, &key)| (key, seen.damaged.contains(frame))));
    kept.into_iter().map(|i| frames[i]).collect()
}

fn run(codec: &Codec, loss: Loss, seed: u64) {
    init();
    let file =
        output_path(&format!("loss-{}-{seed}.{}", codec.name, if codec.mux == "mp4mux" { "mp4" } else { "webm" }));
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers={FRAMES} pattern=smpte horizontal-speed=3 \
           ! video/x-raw,format=I420,width=640,height=360,framerate={FPS}/1 ! {encode} ! identity name=encoded \
           ! {pay} ! identity name=network ! rtpframegate name=gate ! {depay} \
           ! {mux} ! filesink location={file}",
        encode = codec.encode,
        pay = codec.pay,
        depay = codec.depay,
        mux = codec.mux,
        file = file.display(),
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let frame_of = |pts: gst::ClockTime| (pts.nseconds() * FPS + 500_000_000) / 1_000_000_000;
    {
        let seen = seen.clone();
        let pad = pipeline.by_name("encoded").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer()
                && let Some(pts) = b.pts()
            {
                let key = !b.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let mut seen = seen.lock().unwrap();
                let first = *seen.first_pts.get_or_insert(pts);
                seen.keys.insert(frame_of(pts - first), key);
            }
            gst::PadProbeReturn::Ok
        });
    }
    {
        let seen = seen.clone();
        let dropper = Mutex::new(Dropper::new(loss, seed));
        let pad = pipeline.by_name("network").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, move |_, info| {
            let buffers: Vec<gst::Buffer> = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => vec![b.clone()],
                Some(gst::PadProbeData::BufferList(l)) => l.iter_owned().collect(),
                _ => return gst::PadProbeReturn::Ok,
            };
            let mut dropper = dropper.lock().unwrap();
            let mut seen = seen.lock().unwrap();
            let mut kept = Vec::new();
            for buffer in buffers {
                seen.packets += 1;
                let rtp = rtp_timestamp(&buffer);
                let first = *seen.first_rtp.get_or_insert(rtp);
                let frame = (u64::from(rtp.wrapping_sub(first)) + 45_000 / FPS) / (90_000 / FPS);
                let header = {
                    let map = buffer.map_readable().unwrap();
                    let at = 12 + 4 * usize::from(map[0] & 0x0F);
                    (
                        u16::from_be_bytes([map[2], map[3]]),
                        map[1] & 0x80 != 0,
                        map[at..].iter().take(4).copied().collect(),
                    )
                };
                let lose = dropper.lose(rtp);
                seen.sent.push((frame, header.0, header.1, lose, header.2));
                if lose {
                    seen.lost += 1;
                    // An access unit delimiter alone carries nothing a decoder needs.
                    if !is_delimiter(&buffer) {
                        seen.damaged.push(frame);
                    }
                } else {
                    kept.push(buffer);
                }
            }
            drop(seen);
            match &mut info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    if kept.is_empty() {
                        // Not Drop: GStreamer 1.22 would unref the data gstreamer-rs took out.
                        info.data.take();
                        return gst::PadProbeReturn::Handled;
                    }
                    *b = kept.pop().unwrap();
                }
                Some(gst::PadProbeData::BufferList(l)) => {
                    let mut list = gst::BufferList::new();
                    for b in kept {
                        list.get_mut().unwrap().add(b);
                    }
                    *l = list;
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        });
    }
    {
        let seen = seen.clone();
        let pad = pipeline.by_name("gate").unwrap().static_pad("src").unwrap();
        pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, move |_, info| {
            let mut seen = seen.lock().unwrap();
            let mut note = |buffer: &gst::BufferRef| {
                let rtp = rtp_timestamp(buffer);
                let first = seen.first_rtp.unwrap_or(rtp);
                seen.passed.insert((u64::from(rtp.wrapping_sub(first)) + 45_000 / FPS) / (90_000 / FPS));
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => note(b),
                Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(note),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        });
    }
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(120));
    assert!(report.errors.is_empty(), "{}: {:?}", codec.name, report.errors);
    let stats = pipeline.by_name("gate").unwrap().property::<gst::Structure>("stats");

    let seen = seen.lock().unwrap();
    let expected = expected_frames(&seen);
    let decoded = ffmpeg_decode(&file);
    let mut context = format!(
        "{} {loss:?} seed {seed}: {} of {} packets lost, {} frames damaged, gate {stats}",
        codec.name,
        seen.lost,
        seen.packets,
        seen.damaged.len()
    );
    let passed: Vec<u64> = seen.passed.iter().copied().collect();
    if passed != expected {
        // The frames where the gate and the model disagree, with their neighbours' packets.
        let differ: Vec<u64> =
            passed.iter().chain(&expected).filter(|f| passed.contains(f) != expected.contains(f)).copied().collect();
        context += &format!("\n  gate passed {passed:?}\n  expected    {expected:?}");
        for (frame, seq, marker, lost, head) in &seen.sent {
            if differ.iter().any(|d| d.abs_diff(*frame) <= 1) {
                let key = seen.keys.get(frame).copied().unwrap_or(false);
                context +=
                    &format!("\n  frame {frame} key {key} seq {seq} marker {marker} lost {lost} head {head:02x?}");
            }
        }
    }
    assert!(seen.lost > 0 && !expected.is_empty(), "{context}");
    assert!(decoded.errors.is_empty(), "{context}: {:?}", decoded.errors);
    assert_eq!(passed, expected, "{context}");
    assert_eq!(decoded.video_frames, expected.len() as u64, "{context}");
    let _ = std::fs::remove_file(&file);
}

/// Whether a packet carries an H.264 or H.265 access unit delimiter and nothing else.
fn is_delimiter(buffer: &gst::Buffer) -> bool {
    let map = buffer.map_readable().unwrap();
    let mut at = 12 + 4 * usize::from(map[0] & 0x0F);
    if map[0] & 0x10 != 0 {
        at += 4 + 4 * usize::from(u16::from_be_bytes([map[at + 2], map[at + 3]]));
    }
    let payload = &map[at..];
    payload.len() <= 3 && (payload[0] & 0x1F == 9 || (payload[0] >> 1) & 0x3F == 35)
}

/// The RTP timestamp of a packet.
fn rtp_timestamp(buffer: &gst::BufferRef) -> u32 {
    let map = buffer.map_readable().unwrap();
    u32::from_be_bytes([map[4], map[5], map[6], map[7]])
}

fn every_pattern(codec: &Codec) {
    for (loss, seed) in [(Loss::Scattered(0.01), 11), (Loss::Scattered(0.05), 12), (Loss::Bursts(0.01), 13)] {
        run(codec, loss, seed);
    }
}

#[test]
fn h264_after_loss_records_only_decodable_frames() {
    every_pattern(&H264);
}

#[test]
fn h265_after_loss_records_only_decodable_frames() {
    every_pattern(&H265);
}

#[test]
fn vp8_after_loss_records_only_decodable_frames() {
    every_pattern(&VP8);
}

#[test]
fn vp9_after_loss_records_only_decodable_frames() {
    every_pattern(&VP9);
}
