//! GStreamer plugin `facemark`: the `facemark` element, face detection (BlazeFace short range),
//! the face mesh with refined eyes, lips and irises (478 points), run by the plugin's fused CPU engine (tract-onnx reads
//! the ONNX files and runs what the engine does not), drawn onto the frame and attached as
//! metadata.
//!
//! The face pipeline is plain Rust in [`core`] (usable without GStreamer, e.g. from the
//! benchmark); `facemark` only adapts it to GStreamer.

use gst::glib;

#[warn(missing_docs)]
pub mod core;
mod facemark;

pub use crate::core::model::{ModelError, default_model_dir};
pub use crate::core::tracker::{Config, Face, FaceMarker};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    facemark::register(plugin)
}

gst::plugin_define!(
    facemark,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "whipcast",
    env!("BUILD_REL_DATE")
);
