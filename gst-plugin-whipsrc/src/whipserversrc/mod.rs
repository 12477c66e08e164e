//! `whipserversrc`: publishers POST to `/whip/<stream>`; their media leaves on `video_%u` and
//! `audio_%u` pads.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct WhipServerSrc(ObjectSubclass<imp::WhipServerSrc>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

/// What the source pads carry.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstWhipServerSrcOutput")]
pub enum Output {
    #[default]
    #[enum_value(name = "RTP packets (application/x-rtp): link a depayloader", nick = "rtp")]
    Rtp,
    #[enum_value(name = "Depayloaded and parsed (AV1 through rtpav1depay-rs ! av1obufix)", nick = "encoded")]
    Encoded,
    #[enum_value(name = "Decoded raw video and audio", nick = "decoded")]
    Decoded,
}

/// What happens when a publisher leaves.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstWhipServerSrcOnDisconnect")]
pub enum OnDisconnect {
    #[default]
    #[enum_value(name = "Push EOS on every pad (files are finalized, gst-launch exits)", nick = "eos")]
    Eos,
    #[enum_value(name = "Keep the pads and continue with the next publisher", nick = "wait")]
    Wait,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "whipserversrc", gst::Rank::NONE, WhipServerSrc::static_type())
}
