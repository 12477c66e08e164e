//! The element's shell against the GStreamer it runs on.

use gst::prelude::*;
use gst_rtp::prelude::*;

use super::Output;
use super::pads::caps_from_sdp;
use crate::sdp::Codec;

/// The caps an Opus stream of an offer with `fmtp` leaves `rtpopusdepay ! opusparse` with, its
/// RTP caps made from the SDP as webrtcbin makes them.
fn opus_chain_caps(fmtp: Option<&str>) -> gst::Caps {
    let fmtp_line = fmtp.map(|f| format!("a=fmtp:111 {f}\r\n")).unwrap_or_default();
    let text = format!(
        "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
         a=rtpmap:111 opus/48000/2\r\n{fmtp_line}"
    );
    let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap();
    let media = sdp.media(0).unwrap();
    let mut caps = media.caps_from_media(111).unwrap();
    media.attributes_to_caps(caps.get_mut().unwrap()).unwrap();
    caps.get_mut().unwrap().structure_mut(0).unwrap().set_name("application/x-rtp");

    let mut h = gst_check::Harness::new_parse("rtpopusdepay ! opusparse");
    h.set_src_caps(caps);
    // One 20 ms Opus frame (TOC: CELT fullband 20 ms, mono, one frame) of silence.
    let payload = [0xf8u8, 0xff, 0xfe];
    let mut buffer = gst::Buffer::new_rtp_with_sizes(payload.len() as u32, 0, 0).unwrap();
    {
        let buffer = buffer.get_mut().unwrap();
        buffer.set_pts(gst::ClockTime::ZERO);
        let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(buffer).unwrap();
        rtp.set_payload_type(111);
        rtp.set_seq(1);
        rtp.set_timestamp(960);
        rtp.set_marker(true);
        rtp.payload_mut().unwrap().copy_from_slice(&payload);
    }
    h.push(buffer).unwrap();
    h.pull().unwrap();
    h.sinkpad().unwrap().current_caps().unwrap()
}

#[test]
fn opus_caps_from_the_sdp_are_those_the_chain_refines() {
    gst::init().unwrap();
    for fmtp in [
        None,
        Some("minptime=10;useinbandfec=1"),
        Some("minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1"),
        Some("sprop-stereo=0"),
        Some("sprop-maxcapturerate=16000;sprop-stereo=0"),
    ] {
        let codec = Codec {
            payload_type: 111,
            name: "OPUS".into(),
            clock_rate: 48000,
            fmtp: fmtp.map(str::to_owned),
            rtx_payload_type: None,
        };
        let announced = caps_from_sdp(&codec, Output::Encoded).unwrap();
        let real = opus_chain_caps(fmtp);
        // A muxer given the announced caps first takes the chain's as more of the same.
        assert!(real.is_subset(&announced), "{fmtp:?}: {real} is not within {announced}");
    }
    let codec = Codec { payload_type: 96, name: "H264".into(), clock_rate: 90000, fmtp: None, rtx_payload_type: None };
    assert!(caps_from_sdp(&codec, Output::Encoded).is_none(), "H.264 caps need the stream's SPS");
}
