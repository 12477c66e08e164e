//! Element tests with gst_check::Harness: caps, flags, timestamps, keyframe requests, stats,
//! properties.

use gst::prelude::*;
use gst_check::Harness;

fn init() {
    use std::sync::Once;
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstav1rtp::plugin_register_static().unwrap();
    });
}

const SEQ_PAYLOAD: [u8; 11] = [0x00, 0x00, 0x00, 0x2d, 0x4c, 0xff, 0xb3, 0xc0, 0x1a, 0x00, 0x80];
const KEY: u8 = 0b0001_0000;
const INTER: u8 = 0b0011_0000;

fn rtp(seq: u16, ts: u32, payload: &[u8]) -> gst::Buffer {
    let mut p = vec![0x80, 0x80 | 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 1]);
    p.extend_from_slice(payload);
    let mut buffer = gst::Buffer::from_mut_slice(p);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_nseconds(u64::from(ts) * 100_000 / 9));
    buffer
}

/// W=2, N=1: sequence header with length, then a key frame.
fn key_packet(seq: u16, ts: u32) -> gst::Buffer {
    let mut payload = vec![0x28, 1 + SEQ_PAYLOAD.len() as u8, 0x08];
    payload.extend_from_slice(&SEQ_PAYLOAD);
    payload.extend_from_slice(&[0x30, KEY, 1, 2, 3]);
    rtp(seq, ts, &payload)
}

fn inter_packet(seq: u16, ts: u32) -> gst::Buffer {
    rtp(seq, ts, &[0x10, 0x30, INTER, 4, 5])
}

fn depay_harness() -> Harness {
    init();
    let mut h = Harness::new("rtpav1depay-rs");
    h.set_src_caps_str("application/x-rtp,media=video,clock-rate=90000,encoding-name=AV1,payload=96");
    h
}

fn stat(h: &Harness, field: &str) -> u64 {
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    stats.get::<u64>(field).unwrap()
}

#[test]
fn depay_pushes_tus_with_caps_timestamps_and_flags() {
    let mut h = depay_harness();
    h.push(key_packet(1, 0)).unwrap();
    h.push(inter_packet(2, 3000)).unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(s.name(), "video/x-av1");
    assert_eq!(s.get::<&str>("stream-format").unwrap(), "obu-stream");
    assert_eq!(s.get::<&str>("alignment").unwrap(), "tu");

    let key = h.pull().unwrap();
    assert!(!key.flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert!(key.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(key.pts(), Some(gst::ClockTime::ZERO));
    let map = key.map_readable().unwrap();
    assert_eq!(&map[..4], &[0x12, 0x00, 0x0a, SEQ_PAYLOAD.len() as u8]);

    let inter = h.pull().unwrap();
    assert!(inter.flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert!(!inter.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(inter.pts(), Some(gst::ClockTime::from_mseconds(33) + gst::ClockTime::from_nseconds(333_333)));
    assert_eq!(&*inter.map_readable().unwrap(), &[0x12, 0x00, 0x32, 3, INTER, 4, 5]);
    assert_eq!(stat(&h, "temporal-units-pushed"), 2);
    assert_eq!(stat(&h, "packets-received"), 2);
}

#[test]
fn depay_asks_upstream_for_a_key_frame_after_loss_once_per_second() {
    let mut h = depay_harness();
    h.push(key_packet(1, 0)).unwrap();
    h.push(inter_packet(3, 6000)).unwrap(); // 2 lost
    h.push(inter_packet(5, 9000)).unwrap(); // 4 lost
    let mut requests = 0;
    while let Some(event) = h.try_pull_upstream_event() {
        if gst_video::ForceKeyUnitEvent::is(&event) {
            let parsed = gst_video::UpstreamForceKeyUnitEvent::parse(&event).unwrap();
            assert!(parsed.all_headers);
            requests += 1;
        }
    }
    assert_eq!(requests, 1, "rate-limited to one a second");
    assert_eq!(h.buffers_in_queue(), 1, "only the key frame");
    assert_eq!(stat(&h, "packets-lost"), 2);
    assert_eq!(stat(&h, "keyframe-requests"), 1);
    assert_eq!(stat(&h, "temporal-units-dropped"), 2);

    // The next key frame resumes the stream, marked DISCONT.
    h.push(key_packet(6, 12000)).unwrap();
    let _ = h.pull().unwrap();
    let resumed = h.pull().unwrap();
    assert!(resumed.flags().contains(gst::BufferFlags::DISCONT));
    assert!(!resumed.flags().contains(gst::BufferFlags::DELTA_UNIT));
}

#[test]
fn depay_without_requests_or_waiting() {
    let mut h = depay_harness();
    let element = h.element().unwrap();
    element.set_property("request-keyframe", false);
    element.set_property("wait-for-keyframe", false);
    h.push(inter_packet(1, 0)).unwrap();
    h.push(inter_packet(3, 3000)).unwrap();
    assert_eq!(h.buffers_in_queue(), 2);
    assert!(std::iter::from_fn(|| h.try_pull_upstream_event()).all(|e| !gst_video::ForceKeyUnitEvent::is(&e)));
}

#[test]
fn depay_survives_garbage() {
    let mut h = depay_harness();
    for junk in [&[][..], &[0x80; 3], &[0x40; 20], &[0x80, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff]] {
        assert_eq!(h.push(gst::Buffer::from_slice(junk.to_vec())), Ok(gst::FlowSuccess::Ok));
    }
    h.push(key_packet(100, 0)).unwrap();
    assert_eq!(h.buffers_in_queue(), 1);
    assert!(stat(&h, "malformed-packets") >= 3);
}

fn fixer_harness() -> Harness {
    init();
    let mut h = Harness::new("av1obufix");
    h.set_src_caps_str("video/x-av1,stream-format=obu-stream,alignment=tu");
    h
}

/// A key TU as a naive depayloader gives it: no TD, no size fields but on the first OBU.
fn naive_key_tu(pts_ms: u64) -> gst::Buffer {
    let mut data = vec![0x0a, SEQ_PAYLOAD.len() as u8];
    data.extend_from_slice(&SEQ_PAYLOAD);
    data.extend_from_slice(&[0x30, KEY, 1, 2, 3]);
    let mut buffer = gst::Buffer::from_mut_slice(data);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buffer
}

fn naive_inter_tu(pts_ms: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice([0x30, INTER, 9]);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buffer
}

#[test]
fn fixer_caps_codec_data_framerate_and_durations() {
    let mut h = fixer_harness();
    h.push(naive_inter_tu(0)).unwrap(); // before the first key frame: dropped
    for i in 0..12u64 {
        let tu = if i == 0 { naive_key_tu(50) } else { naive_inter_tu(50 + i * 50) };
        h.push(tu).unwrap();
    }
    let caps = h.sinkpad().unwrap().current_caps().expect("caps after the framerate is measured");
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<i32>("width").unwrap(), 1280);
    assert_eq!(s.get::<i32>("height").unwrap(), 720);
    assert_eq!(s.get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(20, 1));
    assert_eq!(s.get::<&str>("profile").unwrap(), "main");
    assert_eq!(s.get::<&str>("chroma-format").unwrap(), "4:2:0");
    assert_eq!(s.get::<u32>("bit-depth-luma").unwrap(), 8);
    let codec_data = s.get::<gst::Buffer>("codec_data").unwrap();
    let codec_data = codec_data.map_readable().unwrap();
    assert_eq!(&codec_data[..6], &[0x81, 0x05, 0x0c, 0x00, 0x0a, SEQ_PAYLOAD.len() as u8]);

    let key = h.pull().unwrap();
    assert!(!key.flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert!(key.flags().contains(gst::BufferFlags::DISCONT));
    assert_eq!(key.duration(), Some(gst::ClockTime::from_mseconds(50)));
    assert_eq!(key.dts(), key.pts());
    let map = key.map_readable().unwrap();
    assert_eq!(&map[..4], &[0x12, 0x00, 0x0a, SEQ_PAYLOAD.len() as u8]);
    assert_eq!(&map[map.len() - 6..], &[0x32, 4, KEY, 1, 2, 3]);
    let inter = h.pull().unwrap();
    assert!(inter.flags().contains(gst::BufferFlags::DELTA_UNIT));
    assert_eq!(&*inter.map_readable().unwrap(), &[0x12, 0, 0x32, 2, INTER, 9]);
    assert_eq!(h.element().unwrap().property::<u64>("dropped"), 1);
}

#[test]
fn fixer_framerate_property_wins_and_sends_caps_at_once() {
    let mut h = fixer_harness();
    h.element().unwrap().set_property("framerate", gst::Fraction::new(30000, 1001));
    h.push(naive_key_tu(0)).unwrap();
    let caps = h.sinkpad().unwrap().current_caps().unwrap();
    let s = caps.structure(0).unwrap();
    assert_eq!(s.get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(30000, 1001));
    assert_eq!(h.pull().unwrap().duration(), Some(gst::ClockTime::from_nseconds(33_366_666)));
}

#[test]
fn fixer_takes_upstream_framerate_and_flushes_held_buffers_at_eos() {
    let mut h = fixer_harness();
    h.set_src_caps_str("video/x-av1,stream-format=obu-stream,alignment=tu,framerate=25/1");
    h.push(naive_key_tu(0)).unwrap();
    let s = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(s.structure(0).unwrap().get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(25, 1));

    let mut h = fixer_harness();
    h.push(naive_key_tu(0)).unwrap();
    h.push(naive_inter_tu(40)).unwrap();
    assert_eq!(h.buffers_in_queue(), 0, "held while measuring");
    h.push_event(gst::event::Eos::new());
    assert_eq!(h.buffers_in_queue(), 2);
    let s = h.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(s.structure(0).unwrap().get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(25, 1));
}

#[test]
fn elements_show_their_properties() {
    init();
    let depay = gst::ElementFactory::make("rtpav1depay-rs").build().unwrap();
    assert!(depay.property::<bool>("wait-for-keyframe"));
    assert!(depay.property::<bool>("request-keyframe"));
    let stats = depay.property::<gst::Structure>("stats");
    for field in [
        "packets-received",
        "bytes-received",
        "temporal-units-pushed",
        "packets-lost",
        "temporal-units-dropped",
        "keyframe-requests",
    ] {
        assert_eq!(stats.get::<u64>(field), Ok(0), "{field}");
    }
    let fix = gst::ElementFactory::make("av1obufix").build().unwrap();
    assert_eq!(fix.factory().unwrap().longname(), "AV1 OBU size fixer");
    assert_eq!(fix.property::<gst::Fraction>("framerate"), gst::Fraction::new(0, 1));
}

/// A sequence header for 640x360 with timing info (30 fps), same profile and format as
/// SEQ_PAYLOAD (1280x720).
const SEQ_640: [u8; 19] =
    [0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x7b, 0x00, 0x00, 0x08, 0x4c, 0xcf, 0xeb, 0x38, 0x03, 0x00, 0x00];

fn key_tu_with(seq: &[u8], pts_ms: u64) -> gst::Buffer {
    let mut data = vec![0x12, 0x00, 0x0a, seq.len() as u8];
    data.extend_from_slice(seq);
    data.extend_from_slice(&[0x32, 4, KEY, 1, 2, 3]);
    let mut buffer = gst::Buffer::from_mut_slice(data);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(pts_ms));
    buffer
}

fn width(h: &Harness) -> i32 {
    h.sinkpad().unwrap().current_caps().unwrap().structure(0).unwrap().get::<i32>("width").unwrap()
}

#[test]
fn fixer_keeps_caps_on_a_resolution_change_unless_asked() {
    for follow in [false, true] {
        let mut h = fixer_harness();
        let element = h.element().unwrap();
        element.set_property("framerate", gst::Fraction::new(30, 1));
        element.set_property("caps-follow-resolution", follow);
        h.push(key_tu_with(&SEQ_PAYLOAD, 0)).unwrap();
        assert_eq!(width(&h), 1280);
        h.push(key_tu_with(&SEQ_640, 33)).unwrap();
        assert_eq!(width(&h), if follow { 640 } else { 1280 }, "caps-follow-resolution={follow}");
        assert_eq!(h.buffers_in_queue(), 2);
        // The new sequence header stays in the bitstream either way.
        let _ = h.pull().unwrap();
        let second = h.pull().unwrap();
        assert_eq!(&second.map_readable().unwrap()[4..4 + SEQ_640.len()], &SEQ_640);
    }
}
