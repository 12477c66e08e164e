//! GStreamer plugin `whipsrc`: `whipcastsrc`, a WHIP (RFC 9725) endpoint inside a source
//! element, built on webrtcbin; `whipcastwhepsink`, a WHEP endpoint that sends what flows into it
//! to any number of viewers; `rtpframegate`, which passes only decodable video frames after a loss;
//! and `fragmentsync`, which keeps recordings whole on disk through a crash.
//!
//! The WHIP/WHEP HTTP rules ([`whip`]), SDP decisions ([`sdp`]), who publishes and when a
//! session ends ([`session`]), which simulcast layer leaves where ([`simulcast`]) and what each
//! viewer is sent ([`viewers`]) are sans-IO; [`endpoint`] holds what both elements are told; [`server`]
//! runs them on a shared HTTP(S) server; the element shell turns sessions into webrtcbins and pads.

use gst::glib;

#[warn(missing_docs)]
pub mod endpoint;
#[warn(missing_docs)]
pub mod fragments;
mod fragmentsync;
#[warn(missing_docs)]
pub mod framegate;
#[warn(missing_docs)]
pub mod ratelimit;
mod rtpframegate;
#[warn(missing_docs)]
pub mod rtptime;
#[warn(missing_docs)]
pub mod sdp;
#[warn(missing_docs)]
pub mod server;
#[warn(missing_docs)]
pub mod session;
#[warn(missing_docs)]
pub mod simulcast;
#[warn(missing_docs)]
pub mod viewers;
#[warn(missing_docs)]
pub mod whip;
mod whipcastsrc;
mod whipcastwhepsink;

/// Registers `element` as `name` and again under `old_name`, its first name, kept so existing
/// pipelines still run: gst-plugins-rs's `rswebrtc` plugin has elements of the same names
/// (`whipserversrc`, `whepserversink`), and where both plugins are installed an old name belongs
/// to whichever plugin GStreamer registered last. The new names are ours alone.
fn register_with_old_name(
    plugin: &gst::Plugin,
    name: &str,
    old_name: &str,
    element: glib::Type,
) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), name, gst::Rank::NONE, element)?;
    // The class takes its factory (what `element.factory()` names) from the type when it is
    // first initialised: that is done here, while the type's factory is the new name's. Left to
    // the first element made, a plugin loaded through the registry cache named the old one.
    let _class = glib::Class::<gst::Element>::from_type(element);
    gst::Element::register(Some(plugin), old_name, gst::Rank::NONE, element)
}

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    whipcastsrc::register(plugin)?;
    whipcastwhepsink::register(plugin)?;
    fragmentsync::register(plugin)?;
    rtpframegate::register(plugin)
}

gst::plugin_define!(
    whipsrc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "whipcast",
    env!("BUILD_REL_DATE")
);
