//! `fragmentsync`: between a muxer and `filesink`, hands the sink whole MP4 fragments and whole
//! Matroska elements, each as one buffer list (one write) followed by an fsync, so that a file
//! cut by a crash at any moment ends on a boundary every demuxer reads cleanly.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FragmentSync(ObjectSubclass<imp::FragmentSync>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "fragmentsync", gst::Rank::NONE, FragmentSync::static_type())
}
