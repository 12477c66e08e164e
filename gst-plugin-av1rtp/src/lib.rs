//! GStreamer plugin `av1rtp`: the AV1 RTP depayloader `rtpav1depay-rs` and the AV1 OBU size
//! fixer `av1obufix`.
//!
//! The bitstream logic is sans-IO and public ([`av1`], [`rtp`]) so that fuzz targets and other
//! crates can use it; the element modules only adapt it to GStreamer.

use gst::glib;

#[warn(missing_docs)]
pub mod av1;
mod av1obufix;
#[warn(missing_docs)]
pub mod framerate;
#[warn(missing_docs)]
pub mod rtp;
mod rtpav1depay;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    rtpav1depay::register(plugin)?;
    av1obufix::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    av1rtp,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "whipcast",
    env!("BUILD_REL_DATE")
);
