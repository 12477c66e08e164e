//! `facemark`: an in-place video filter that finds faces and their 468-point mesh, draws them
//! and attaches them as metadata.

use gst::glib;
use gst::prelude::*;

mod format;
mod imp;
mod meta;
mod settings;
mod state;
mod worker;

glib::wrapper! {
    pub struct FaceMark(ObjectSubclass<imp::FaceMark>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// What the element draws onto the frames (property `draw`).
#[glib::flags(name = "GstFacemarkDraw")]
pub enum DrawFlags {
    #[flags_value(name = "Bounding box of the landmarks", nick = "box")]
    BOX = crate::core::draw::flags::BOX,
    #[flags_value(name = "Detector keypoints and mesh points", nick = "keypoints")]
    KEYPOINTS = crate::core::draw::flags::KEYPOINTS,
    #[flags_value(name = "Mesh tesselation", nick = "tesselation")]
    TESSELATION = crate::core::draw::flags::TESSELATION,
    #[flags_value(name = "Face oval, eye, eyebrow and lip contours", nick = "contours")]
    CONTOURS = crate::core::draw::flags::CONTOURS,
    #[flags_value(name = "Irises (when irises are on and a model for them is installed)", nick = "irises")]
    IRISES = crate::core::draw::flags::IRISES,
}

/// Whether frames wait for their own inference (property `mode`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacemarkMode")]
pub enum Mode {
    #[default]
    #[enum_value(name = "inline when upstream is not live, latest when it is", nick = "auto")]
    Auto,
    #[enum_value(name = "every frame waits for its own inference (exact, may slow the stream)", nick = "inline")]
    Inline,
    #[enum_value(
        name = "inference on a worker thread: frames never wait long, they carry the newest result",
        nick = "latest"
    )]
    Latest,
}

/// Which inference engine runs the models (property `runtime`).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacemarkRuntime")]
pub enum Runtime {
    #[default]
    #[enum_value(name = "the fused NHWC engine of this plugin where it supports the model, else tract", nick = "auto")]
    Auto,
    #[enum_value(name = "tract's optimised plan", nick = "tract")]
    Tract,
}

impl From<Runtime> for crate::core::model::Runtime {
    fn from(r: Runtime) -> Self {
        match r {
            Runtime::Auto => crate::core::model::Runtime::Auto,
            Runtime::Tract => crate::core::model::Runtime::Tract,
        }
    }
}

impl Default for DrawFlags {
    fn default() -> Self {
        DrawFlags::from_bits_truncate(crate::core::draw::flags::DEFAULT)
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    DrawFlags::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Mode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Runtime::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(Some(plugin), "facemark", gst::Rank::NONE, FaceMark::static_type())
}
