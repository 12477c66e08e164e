//! `whipcastsrc`: publishers POST to `/whip/<stream>`; their media leaves on `video_%u` and
//! `audio_%u` pads.
//!
//! The decisions live in sans-IO modules of the crate (`sdp`, `session`, `simulcast`, `whip`);
//! this shell is split by job: `settings` (the properties), `negotiation` (a session's webrtcbin
//! and its offer/answer and ICE restarts), `outputs` (each stream's chain after webrtcbin),
//! `layers` (simulcast layers routed to pads), `pads` (the element's pads, which a session
//! feeds), `watch` (the once-a-second timeouts and stats), `ending` (how a session ends),
//! `imp` (the element: sessions coming and going, signals, stats, state changes).

use gst::glib;
use gst::prelude::*;

mod ending;
mod imp;
mod layers;
mod negotiation;
mod outputs;
mod pads;
mod settings;
#[cfg(test)]
mod tests;
mod watch;

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

/// Which simulcast layer(s) a publisher sending several leaves on the pads.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstWhipServerSrcSimulcast")]
pub enum Simulcast {
    #[default]
    #[enum_value(
        name = "The layer with the most pixels, on one pad (bytes sent where sizes are unknown: output=rtp)",
        nick = "best"
    )]
    Best,
    #[enum_value(name = "The layer with the fewest pixels, on one pad", nick = "lowest")]
    Lowest,
    #[enum_value(name = "Every layer on a pad of its own, in the order of the offer's a=simulcast list", nick = "all")]
    All,
}

/// Whose order picks the codec among those both sides have.
#[derive(Debug, Default, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstWhipServerSrcCodecOrder")]
pub enum CodecOrder {
    #[default]
    #[enum_value(
        name = "The publisher's: the first codec of its offer that video-codecs/audio-codecs list",
        nick = "offer"
    )]
    Offer,
    #[enum_value(name = "Ours: the first of video-codecs/audio-codecs that the offer has", nick = "server")]
    Server,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::register_with_old_name(plugin, "whipcastsrc", "whipserversrc", WhipServerSrc::static_type())
}
