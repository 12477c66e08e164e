//! `rtpav1depay-rs`: AV1 RTP packets in, one temporal unit per buffer out.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct RtpAv1Depay(ObjectSubclass<imp::RtpAv1Depay>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "rtpav1depay-rs", gst::Rank::MARGINAL, RtpAv1Depay::static_type())
}
