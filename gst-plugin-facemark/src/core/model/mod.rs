//! Loading and running the two ONNX models with tract.
//!
//! This file holds the model files' names (the attention model's in `attention.rs`), the limits
//! and [`load_models`]; [`Net`] (one model
//! ready to run) is in `net.rs`, the checks that refuse hostile files in `checks.rs`, and the
//! rewrites of the parsed graph in `rewrite.rs`.

mod checks;
mod net;
mod rewrite;
mod shared;

pub use net::Net;
pub use rewrite::rewrite_prelu;
pub use shared::shared_models;

use std::fmt;
use std::path::{Path, PathBuf};

use tract_onnx::prelude::TractResult;

use super::attention::{self, Region};
use super::cnn;
use super::refine::{Heads, Refiner};

/// The face detector's file name in the model folder (MediaPipe BlazeFace short range).
pub const DETECTOR_FILE: &str = "face_detection_short_range.onnx";
/// The face landmark model's file name in the model folder (MediaPipe Face Mesh, 468 points),
/// used when the attention model ([`attention::TRUNK_FILE`]) is not installed.
pub const LANDMARK_FILE: &str = "face_landmark.onnx";
/// Optional, with [`LANDMARK_FILE`]: irises are added when this file is present.
pub const IRIS_FILE: &str = "iris_landmark.onnx";

/// What to tell users whose models are missing or broken.
pub const FIX_HINT: &str = "run scripts/fetch-models.sh (it installs the models into the default \
     model dir, or into the folder given as its argument) or point the model-dir property / \
     FACEMARK_MODEL_DIR at a folder holding them";

/// The largest model file read. The face models are 0.4 to 2.6 MB: this leaves room for far
/// bigger variants, while a wrong or hostile path (a disk image, an endless device) is refused
/// rather than read into memory.
const MAX_MODEL_BYTES: u64 = 256 << 20;

/// The most values one tensor of a model may hold, constant or computed, and all of them
/// together: the fused engine's bounds (see there why these values). The engines allocate what a
/// model's shapes ask for, and a small hostile file must not get to ask for gigabytes.
const MAX_TENSOR_VALUES: u64 = cnn::MAX_FLOATS as u64;
const MAX_TOTAL_VALUES: u64 = cnn::MAX_TOTAL_FLOATS as u64;

/// The ops a model may use: those of the face models (the ones the fused engine runs) and those
/// [`rewrite_prelu`] adds. tract knows many more, some of which allocate whatever values in the
/// file ask for while the model loads (ConstantOfShape, Expand, Tile, Range, Resize) or loop as
/// long as they say (Loop, Scan): none is needed, so hostile files do not get to use them.
const MODEL_OPS: &[&str] =
    &["Add", "Concat", "Constant", "Conv", "MaxPool", "Min", "Mul", "PRelu", "Pad", "Relu", "Reshape", "Transpose"];

/// The folder the element reads models from when `model-dir` is not set:
/// `$FACEMARK_MODEL_DIR` at run time, else `$FACEMARK_MODEL_DIR` as it was at build time, else
/// `$XDG_DATA_HOME/whipcast/models`, else `~/.local/share/whipcast/models`.
pub fn default_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FACEMARK_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = option_env!("FACEMARK_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("whipcast/models");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/whipcast/models")
}

/// A model that could not be loaded, with the path and the way to fix it.
#[derive(Debug, Clone)]
pub struct ModelError {
    /// The model file (or the folder, when that is what is missing).
    pub path: PathBuf,
    /// What went wrong, for people.
    pub reason: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load face model {}: {}; {}", self.path.display(), self.reason, FIX_HINT)
    }
}

impl std::error::Error for ModelError {}

/// Which inference engine runs the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// This crate's fused NHWC engine ([`super::cnn`]) when it supports every op of the model,
    /// else tract.
    #[default]
    Auto,
    /// tract's optimised plan (with PRelu rewritten, see [`rewrite_prelu`]).
    Tract,
    /// tract on the model as it is (no PRelu rewrite): the reference the others are tested
    /// against.
    TractAsIs,
}

/// The models of one face pipeline.
pub struct Models {
    /// BlazeFace short range.
    pub detector: Net,
    /// The mesh: the attention model's trunk when it is installed, else Face Mesh.
    pub landmarker: Net,
    /// What adds the irises (and with the attention heads refines lips and eyes).
    pub refiner: Refiner,
}

impl Models {
    /// The same models ready to run beside these (see [`Net::instance`]).
    pub fn instance(&self) -> TractResult<Models> {
        Ok(Models {
            detector: self.detector.instance()?,
            landmarker: self.landmarker.instance()?,
            refiner: self.refiner.instance()?,
        })
    }
}

/// Loads the models from `dir`: the detector; the attention model (its trunk as the landmark
/// model, its heads as the refiner) when [`attention::TRUNK_FILE`] is there, else the mesh
/// model and, when its file is there, the iris model.
pub fn load_models(dir: &Path, runtime: Runtime) -> Result<Models, ModelError> {
    use super::{detector, iris, landmarks};
    if !dir.is_dir() {
        return Err(ModelError { path: dir.to_owned(), reason: "the model folder does not exist".into() });
    }
    let detector = Net::load_with(
        &dir.join(DETECTOR_FILE),
        detector::INPUT_SIZE,
        &[detector::NUM_ANCHORS * detector::NUM_VALUES, detector::NUM_ANCHORS],
        runtime,
    )?;
    let trunk = dir.join(attention::TRUNK_FILE);
    if trunk.exists() {
        let landmarker = Net::load_with(&trunk, landmarks::INPUT_SIZE, &attention::TRUNK_OUTPUTS, runtime)?;
        let load = |r: &Region| {
            Net::load_planes(&dir.join(r.file), attention::MAP_CHANNELS, attention::CROP_SIDE, &r.outputs(), runtime)
        };
        let [lips, right, left] = Heads::REGIONS;
        let heads = Heads::new([load(lips)?, load(right)?, load(left)?]);
        return Ok(Models { detector, landmarker, refiner: Refiner::Attention(heads) });
    }
    let landmarker =
        Net::load_with(&dir.join(LANDMARK_FILE), landmarks::INPUT_SIZE, &[landmarks::NUM_LANDMARKS * 3, 1], runtime)?;
    let iris_path = dir.join(IRIS_FILE);
    let refiner = if iris_path.exists() {
        // The eye-contour output (71 points) is not used: only the iris head runs.
        Refiner::Iris(Net::load_selected(
            &iris_path,
            iris::INPUT_SIZE,
            &[iris::IRIS_OUTPUT],
            &[iris::OUTPUT_LEN],
            runtime,
        )?)
    } else {
        Refiner::None
    };
    Ok(Models { detector, landmarker, refiner })
}
