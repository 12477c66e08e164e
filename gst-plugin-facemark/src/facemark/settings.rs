//! The element's settings: their defaults, the ParamSpecs of the properties that set them, and
//! the core config and model folder they make.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use super::{DrawFlags, Mode, Runtime};
use crate::core::model::default_model_dir;
use crate::core::tracker::Config;

#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) model_dir: Option<String>,
    pub(super) max_faces: u32,
    pub(super) min_detection_confidence: f64,
    pub(super) min_tracking_confidence: f64,
    pub(super) draw: DrawFlags,
    pub(super) tracking: bool,
    pub(super) detect_interval: u32,
    pub(super) emit_messages: bool,
    pub(super) irises: bool,
    pub(super) iris_interval: u32,
    pub(super) search_tiles: bool,
    pub(super) mode: Mode,
    pub(super) runtime: Runtime,
}

/// The face pipeline's defaults, which the settings and the ParamSpecs take.
const DEFAULTS: Config = Config::DEFAULT;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_dir: None,
            max_faces: DEFAULTS.max_faces as u32,
            min_detection_confidence: DEFAULTS.min_detection_confidence as f64,
            min_tracking_confidence: DEFAULTS.min_tracking_confidence as f64,
            draw: DrawFlags::default(),
            tracking: DEFAULTS.tracking,
            detect_interval: DEFAULTS.detect_interval,
            emit_messages: false,
            irises: DEFAULTS.irises,
            iris_interval: DEFAULTS.iris_interval,
            search_tiles: DEFAULTS.search_tiles,
            mode: Mode::Auto,
            runtime: Runtime::Auto,
        }
    }
}

impl Settings {
    pub(super) fn config(&self) -> Config {
        Config {
            max_faces: self.max_faces as usize,
            min_detection_confidence: self.min_detection_confidence as f32,
            min_tracking_confidence: self.min_tracking_confidence as f32,
            tracking: self.tracking,
            detect_interval: self.detect_interval,
            irises: self.irises,
            iris_interval: self.iris_interval,
            search_tiles: self.search_tiles,
            runtime: self.runtime.into(),
        }
    }

    pub(super) fn model_dir(&self) -> PathBuf {
        self.model_dir.as_ref().filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(default_model_dir)
    }
}

/// The element's properties, their defaults taken from [`DEFAULTS`].
pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("model-dir")
            .nick("Model folder")
            .blurb(
                "Folder with face_detection_short_range.onnx and face_landmark_with_attention*.onnx \
                 (else the older face_landmark.onnx and iris_landmark.onnx) (default: $FACEMARK_MODEL_DIR, else $XDG_DATA_HOME/whipcast/models; \
                 scripts/fetch-models.sh installs them)",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("max-faces")
            .nick("Maximum faces")
            .blurb("Most faces to find per frame")
            .minimum(1)
            .maximum(16)
            .default_value(DEFAULTS.max_faces as u32)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("min-detection-confidence")
            .nick("Minimum detection confidence")
            .blurb("Detector score a face needs")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(DEFAULTS.min_detection_confidence as f64)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("min-tracking-confidence")
            .nick("Minimum tracking confidence")
            .blurb("Landmark face-presence score below which a face counts as lost")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(DEFAULTS.min_tracking_confidence as f64)
            .mutable_playing()
            .build(),
        glib::ParamSpecFlags::builder::<DrawFlags>("draw")
            .nick("Draw")
            .blurb("What to draw onto the frames")
            .default_value(DrawFlags::default())
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("tracking")
            .nick("Tracking")
            .blurb("Place the next frame's face region from the last landmarks instead of running the detector")
            .default_value(DEFAULTS.tracking)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("detect-interval")
            .nick("Detection interval")
            .blurb("While tracking, run the detector anyway every this many frames (0: only when a face is lost)")
            .default_value(DEFAULTS.detect_interval)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("irises")
            .nick("Irises")
            .blurb("Refine eyes and lips and add the irises: 478 points instead of 468 (the attention model's heads, or the older iris model when only that is installed)")
            .default_value(DEFAULTS.irises)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("iris-interval")
            .nick("Iris interval")
            .blurb("Run each eye's model (eye and iris) for a tracked face every this many frames, the eyes in turn (1: both eyes every frame; 2 halves their cost); between runs an eye's points keep their place relative to that frame's mesh")
            .minimum(1)
            .maximum(300)
            .default_value(DEFAULTS.iris_interval)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("search-tiles")
            .nick("Search tiles")
            .blurb("When the whole frame shows no face, also look in one square tile of a wide or tall frame per frame, in turn: faces down to 1/8 of the shorter side are found instead of 1/8 of the longer (a 720p frame: 90 px instead of 160 px), for one more detector run on frames without a face")
            .default_value(DEFAULTS.search_tiles)
            .mutable_playing()
            .build(),
        glib::ParamSpecBoolean::builder("emit-messages")
            .nick("Emit messages")
            .blurb("Post a `facemark` element message with the faces of every frame")
            .default_value(false)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder::<Mode>("mode")
            .nick("Mode")
            .blurb("Whether frames wait for their own inference (inline) or go on with the newest finished result while a worker thread runs the models (latest); auto: latest when upstream is live")
            .default_value(Mode::Auto)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder::<Runtime>("runtime")
            .nick("Runtime")
            .blurb("The inference engine, chosen when the models load (NULL -> READY): auto runs this plugin's fused NHWC engine (AVX-512, AVX2 or portable code, picked at run time) for every model whose ops it supports and tract for the others; tract runs tract's optimised plan. The stats property's runtime field says what runs")
            .default_value(Runtime::Auto)
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("frames-in, inferences, dropped-inferences, mean-inference-ms, inference-seconds (their total), detector-runs, landmark-runs, iris-runs, runtime (what runs each model)")
            .read_only()
            .build(),
    ]
}
