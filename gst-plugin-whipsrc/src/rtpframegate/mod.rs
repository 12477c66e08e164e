//! `rtpframegate`: before an H.264, H.265, VP8 or VP9 depayloader, passes only whole frames of a
//! stream intact since its last key frame; after a loss it waits for the next key frame and asks
//! for one upstream (webrtcbin sends it to the publisher as a PLI).

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct RtpFrameGate(ObjectSubclass<imp::RtpFrameGate>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "rtpframegate", gst::Rank::NONE, RtpFrameGate::static_type())
}
