//! RTP for the tests: captures replayed with their timestamps, AV1 packetized by a real peer
//! (gst-plugins-rs rtpav1pay), OBUs normalized for comparison.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use crate::media::run_collecting;
use crate::{data_path, init, output_path};

/// One RTP packet with the PTS it should carry into the pipeline.
#[derive(Clone)]
pub struct TimedPacket {
    pub data: Vec<u8>,
    pub pts: gst::ClockTime,
}

/// Reads a `.lenrtp` capture: records of a u32 big-endian length and one RTP packet.
pub fn read_lenrtp(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 4;
        packets.push(data[pos..pos + len].to_vec());
        pos += len;
    }
    packets
}

/// Writes the Chromium capture as an RFC 4571 stream (u16 big-endian length + packet), the
/// format `filesrc ! rtpstreamdepay` reads, to `name` in the output folder.
pub fn chrome_capture_rfc4571(name: &str) -> PathBuf {
    let path = output_path(name);
    let mut bytes = Vec::new();
    for p in read_lenrtp(&data_path("chrome_av1.lenrtp")) {
        bytes.extend_from_slice(&(p.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&p);
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Timestamps packets from their RTP timestamps (unwrapped, relative to the first), as
/// webrtcbin's jitter buffer would deliver them.
pub fn timed_from_rtp(packets: Vec<Vec<u8>>, clock_rate: u64) -> Vec<TimedPacket> {
    let mut first = None;
    let mut last = 0u32;
    let mut extended = 0i64;
    packets
        .into_iter()
        .map(|data| {
            let ts = u32::from_be_bytes(data[4..8].try_into().unwrap());
            if first.is_none() {
                first = Some(());
                last = ts;
            }
            extended += i64::from(ts.wrapping_sub(last) as i32);
            last = ts;
            let pts = gst::ClockTime::from_nseconds((extended.max(0) as u64) * 1_000_000_000 / clock_rate);
            TimedPacket { data, pts }
        })
        .collect()
}

pub fn av1_rtp_caps() -> gst::Caps {
    init();
    gst::Caps::builder("application/x-rtp")
        .field("media", "video")
        .field("clock-rate", 90_000i32)
        .field("encoding-name", "AV1")
        .field("payload", 96i32)
        .build()
}

/// Encodes `frames` frames of a moving (detailed) test pattern to AV1 and packetizes them with
/// gst-plugins-rs `rtpav1pay` (a payloader written by others). Key frames every `gop` frames.
pub fn encode_av1_rtp(frames: u32, width: u32, height: u32, gop: u32, mtu: u32) -> Vec<TimedPacket> {
    init();
    let launch = format!(
        "videotestsrc num-buffers={frames} pattern=smpte horizontal-speed=3 ! video/x-raw,format=I420,width={width},height={height},framerate=30/1 \
         ! av1enc min-quantizer=10 max-quantizer=30 cpu-used=8 usage-profile=realtime keyframe-max-dist={gop} \
         ! av1parse ! rtpav1pay mtu={mtu} ! appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let (buffers, report) = run_collecting(&pipeline);
    assert!(report.errors.is_empty(), "encoding failed: {:?}", report.errors);
    buffers
        .into_iter()
        .map(|(buffer, _)| TimedPacket {
            pts: buffer.pts().expect("payloader keeps timestamps"),
            data: buffer.map_readable().unwrap().to_vec(),
        })
        .collect()
}

/// A TU as a list of (OBU type, extension byte, payload), leaving out temporal delimiters and
/// padding: the same normalization for every depayloader we compare.
pub fn normalized_obus(tu: &[u8]) -> Vec<(u8, Option<u8>, Vec<u8>)> {
    use gstav1rtp::av1::obu::{Obus, obu_type};
    Obus::new(tu, false)
        .map(|o| o.expect("well-formed OBUs"))
        .filter(|o| !matches!(o.header.obu_type(), obu_type::TEMPORAL_DELIMITER | obu_type::PADDING))
        .map(|o| {
            let ext = o.header.has_extension().then(|| o.header.temporal_id() << 5 | o.header.spatial_id() << 3);
            (o.header.obu_type(), ext, o.payload.to_vec())
        })
        .collect()
}
