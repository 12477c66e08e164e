//! `whipcastwhepsink`: viewers POST a WHEP offer to `/whep/<stream>` and are sent what flows into
//! the element's `video_%u` and `audio_%u` pads (encoded: H.264, H.265, VP8, VP9, AV1, Opus),
//! each by a webrtcbin of its own, on the HTTP server whipcastsrc uses.
//!
//! The rules (who starts where, who is skipped, key frame requests) are sans-IO in
//! [`crate::viewers`]; this shell is split by job: `settings` (the properties), `viewer` (a
//! viewer's pipeline and its offer/answer), `tracks` (what flows into each pad, and on to the
//! viewers), `audience` (viewers admitted, ended and watched; their stats), `imp` (the element:
//! state, pads, start and stop).

use gst::glib;
use gst::prelude::*;

mod audience;
mod imp;
mod settings;
#[cfg(test)]
mod tests;
mod tracks;
mod viewer;

glib::wrapper! {
    pub struct WhepServerSink(ObjectSubclass<imp::WhepServerSink>) @extends gst::Bin, gst::Element, gst::Object, @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::register_with_old_name(plugin, "whipcastwhepsink", "whepserversink", WhepServerSink::static_type())
}

/// Registers the element without a plugin (the crate's own tests).
#[cfg(test)]
fn register_static() -> Result<(), glib::BoolError> {
    gst::Element::register(None, "whipcastwhepsink", gst::Rank::NONE, WhepServerSink::static_type())
}
