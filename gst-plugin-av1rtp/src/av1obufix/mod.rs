//! `av1obufix`: AV1 temporal units in, container-ready temporal units and caps out.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct Av1ObuFix(ObjectSubclass<imp::Av1ObuFix>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "av1obufix", gst::Rank::NONE, Av1ObuFix::static_type())
}
