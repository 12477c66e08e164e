//! The per-frame face pipeline: detect (when needed), find landmarks, track.

use std::path::Path;
use std::time::Instant;

use super::detector::{self, Detection};
use super::geometry::{Roi, iou};
use super::image::{Frame, sample_roi};
use super::landmarks::{self, NUM_LANDMARKS};
use super::model::{ModelError, Models, Net, Runtime, shared_models};
use super::refine::{EyeOutput, Refiner};

/// What [`FaceMarker`] looks for and how hard it tries; the element's properties map onto it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Most faces tracked at once (0: none, the models do not run).
    pub max_faces: usize,
    /// Detections scoring below this probability (0..1) are dropped.
    pub min_detection_confidence: f32,
    /// A landmark face-presence probability below this ends tracking of that face.
    pub min_tracking_confidence: f32,
    /// Reuse the last landmarks to place the next region instead of running the detector.
    pub tracking: bool,
    /// While tracking, still run the detector every this many frames (0: only when lost).
    pub detect_interval: u32,
    /// Refine the eyes and lips and add the 10 iris points (478 in all): the attention model's
    /// heads, or the older iris model (irises only) when only that is installed.
    pub irises: bool,
    /// Run each eye's model (the attention eye head, or the iris model) for a tracked face every
    /// this many frames, the eyes in turn (1: both eyes every frame). Between runs an eye's
    /// points keep their last place in the eye's crop, which follows each frame's mesh.
    pub iris_interval: u32,
    /// When the whole frame shows no face, also look in one square tile of a wide or tall frame
    /// (the next one in turn): faces down to 1/8 of the shorter side are found instead of 1/8 of
    /// the longer one, for one more detector run on frames without a face.
    pub search_tiles: bool,
    /// The inference engine.
    pub runtime: Runtime,
}

impl Config {
    /// The defaults, also those of the element's properties.
    pub const DEFAULT: Config = Config {
        max_faces: 1,
        min_detection_confidence: 0.5,
        min_tracking_confidence: 0.5,
        tracking: true,
        detect_interval: 30,
        irises: true,
        iris_interval: 1,
        search_tiles: true,
        runtime: Runtime::Auto,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// One face in frame pixels.
#[derive(Clone, Debug, Default)]
pub struct Face {
    /// The landmark model's face-presence probability.
    pub score: f32,
    /// `[xmin, ymin, xmax, ymax]` of the landmarks.
    pub bbox: [f32; 4],
    /// 468 mesh points `[x, y, z]`, z in x's scale (frame pixels), smaller = closer.
    pub landmarks: Vec<[f32; 3]>,
    /// The subject's right iris: centre then 4 edge points, when irises are on and a model for
    /// them is installed.
    pub right_iris: Option<[[f32; 3]; 5]>,
    /// The subject's left iris, as [`Face::right_iris`].
    pub left_iris: Option<[[f32; 3]; 5]>,
    /// The detection this face came from, when the detector ran for it this frame.
    pub detection: Option<Detection>,
    /// The region the landmarks were computed in.
    pub roi: Roi,
    /// Each eye's model's last raw output (right, left), in its crop's units, kept for the frames
    /// the model skips (`Config::iris_interval`).
    pub(super) eye_outputs: [Option<EyeOutput>; 2],
    /// How many frames in a row this face has been tracked (0: found by the detector).
    pub(super) tracked_frames: u32,
}

impl Face {
    /// All points in MediaPipe's order: the 468 mesh points, then (when the irises are found) the
    /// subject's right iris (468 centre, 469..=472 edge) and left iris (473 centre, 474..=477).
    pub fn points(&self) -> impl Iterator<Item = &[f32; 3]> {
        let irises = match (&self.right_iris, &self.left_iris) {
            (Some(r), Some(l)) => Some(r.iter().chain(l.iter())),
            _ => None,
        };
        self.landmarks.iter().chain(irises.into_iter().flatten())
    }

    /// Makes `self` equal to `other`, reusing `self`'s landmark storage.
    pub fn copy_from(&mut self, other: &Face) {
        let Face { score, bbox, landmarks, right_iris, left_iris, detection, roi, eye_outputs, tracked_frames } = other;
        self.landmarks.clone_from(landmarks);
        self.eye_outputs = *eye_outputs;
        self.tracked_frames = *tracked_frames;
        self.score = *score;
        self.bbox = *bbox;
        self.right_iris = *right_iris;
        self.left_iris = *left_iris;
        self.detection = *detection;
        self.roi = *roi;
    }

    /// Point `i` in the order of [`Face::points`].
    pub fn point(&self, i: usize) -> Option<[f32; 3]> {
        self.points().nth(i).copied()
    }
}

/// How [`unwind_to_error`] starts the message of a panic.
pub const PANICKED: &str = "panicked: ";

/// `f()`, with a panic inside it turned into an error saying what the panic said.
pub fn unwind_to_error<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let said = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(format!("{PANICKED}{said}"))
    })
}

/// Makes `dst` a copy of `src`, reusing the faces (and their landmark storage) already in `dst`.
pub fn copy_faces(dst: &mut Vec<Face>, src: &[Face]) {
    dst.truncate(src.len());
    for (d, s) in dst.iter_mut().zip(src) {
        d.copy_from(s);
    }
    let kept = dst.len();
    dst.extend(src[kept..].iter().cloned());
}

/// Counters of a [`FaceMarker`]'s work since it was made, for the element's `stats` property.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Frames given to [`FaceMarker::process`].
    pub frames: u64,
    /// Detector runs (a tile search adds one).
    pub detector_runs: u64,
    /// Landmark model runs, one per face region looked at.
    pub landmark_runs: u64,
    /// Iris model (or attention eye head) runs, one per eye.
    pub iris_runs: u64,
    /// Time in each model's `run` alone (seconds), to tell inference from the rest.
    pub detector_seconds: f64,
    /// Time in the landmark model's `run`, seconds.
    pub landmark_seconds: f64,
    /// Time in the iris model's runs, or the attention heads' (lips included), seconds.
    pub iris_seconds: f64,
    /// Total time spent in [`FaceMarker::process`] (sampling + inference + decoding), seconds.
    pub inference_seconds: f64,
}

/// Finds and tracks faces frame after frame: the detector when needed (no face tracked, tracking
/// off, or every [`Config::detect_interval`] frames), then the landmark model in each face's
/// region and the refinement ([`Refiner`]) on it.
pub struct FaceMarker {
    config: Config,
    detector: Net,
    landmarker: Net,
    refiner: Refiner,
    anchors: Vec<[f32; 2]>,
    faces: Vec<Face>,
    next_faces: Vec<Face>,
    spare: Vec<Face>,
    candidates: Vec<Detection>,
    detections: Vec<Detection>,
    rois: Vec<(Roi, Option<Detection>)>,
    frames_since_detection: u32,
    /// The tile the next tile search looks in (modulo the frame's tile count).
    next_tile: usize,
    stats: Stats,
}

impl std::fmt::Debug for FaceMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceMarker").field("config", &self.config).field("faces", &self.faces.len()).finish()
    }
}

impl FaceMarker {
    /// What runs each model, e.g. `detector: fused (Avx512), mesh: fused (Avx512), iris: ...`.
    pub fn runtimes(&self) -> String {
        let mut s = format!("detector: {}, mesh: {}", self.detector.runtime(), self.landmarker.runtime());
        if let Some(r) = self.refiner.runtime() {
            s += &format!(", {r}");
        }
        s
    }

    /// Loads the models from `model_dir` (see [`crate::core::model::load_models`]), or takes an
    /// instance of those already loaded from the same files ([`shared_models`]).
    pub fn new(model_dir: &Path, config: Config) -> Result<FaceMarker, ModelError> {
        let Models { detector, landmarker, refiner } = shared_models(model_dir, config.runtime)?;
        Ok(FaceMarker {
            config,
            detector,
            landmarker,
            refiner,
            anchors: detector::anchors(),
            faces: Vec::new(),
            next_faces: Vec::new(),
            spare: Vec::new(),
            candidates: Vec::with_capacity(64),
            detections: Vec::with_capacity(16),
            rois: Vec::with_capacity(8),
            frames_since_detection: 0,
            next_tile: 0,
            stats: Stats::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies `config` from the next frame on; faces beyond the new `max_faces` are dropped.
    pub fn set_config(&mut self, config: Config) {
        if config != self.config {
            self.config = config;
            self.faces.truncate(config.max_faces);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Forgets tracked faces (e.g. after a seek or a flush).
    pub fn reset(&mut self) {
        self.spare.append(&mut self.faces);
        self.frames_since_detection = 0;
    }

    /// The faces found in the last processed frame.
    pub fn faces(&self) -> &[Face] {
        &self.faces
    }

    /// [`FaceMarker::process`] that cannot take the caller down: a failure or a panic inside it
    /// is an error message, and after a panic the tracked faces (maybe half written) are
    /// forgotten, so one bad frame fails alone instead of every later one.
    pub fn process_or_error(&mut self, frame: &Frame) -> Result<(), String> {
        let outcome = unwind_to_error(|| self.process(frame).map(|_| ()).map_err(|e| format!("{e:#}")));
        if outcome.as_ref().is_err_and(|e| e.starts_with(PANICKED)) {
            self.reset();
        }
        outcome
    }

    /// Runs the models on `frame`; returns the faces found (best first).
    pub fn process(&mut self, frame: &Frame) -> tract_onnx::prelude::TractResult<&[Face]> {
        let started = Instant::now();
        self.stats.frames += 1;
        let cfg = self.config;
        if frame.width == 0 || frame.height == 0 || cfg.max_faces == 0 {
            self.reset();
            return Ok(&self.faces);
        }

        self.rois.clear();
        if cfg.tracking {
            for f in &self.faces {
                self.rois.push((landmarks::next_roi(&f.landmarks), None));
            }
        }
        self.frames_since_detection = self.frames_since_detection.saturating_add(1);
        let mut detect = !cfg.tracking
            || self.rois.is_empty()
            || (cfg.detect_interval > 0 && self.frames_since_detection >= cfg.detect_interval);
        self.spare.append(&mut self.next_faces);
        loop {
            if detect {
                self.frames_since_detection = 0;
                self.detect(frame, cfg.min_detection_confidence)?;
                for d in &self.detections {
                    if self.rois.len() >= cfg.max_faces {
                        break;
                    }
                    // A face already tracked keeps its (more precise) tracked region.
                    let roi = d.landmark_roi();
                    if !self.rois.iter().any(|(r, _)| iou(&r.bounds(), &roi.bounds()) > 0.3) {
                        self.rois.push((roi, Some(*d)));
                    }
                }
            }
            for k in 0..self.rois.len() {
                let (roi, detection) = self.rois[k];
                let mut face = self.spare.pop().unwrap_or_default();
                // A tracked region (one without a detection) is `self.faces[k]` moved on: its
                // iris outputs go on with it.
                match self.faces.get(k).filter(|_| detection.is_none()) {
                    Some(tracked) => {
                        face.eye_outputs = tracked.eye_outputs;
                        face.tracked_frames = tracked.tracked_frames.wrapping_add(1);
                    }
                    None => {
                        face.eye_outputs = [None; 2];
                        face.tracked_frames = 0;
                    }
                }
                if self.landmarks(frame, &roi, &mut face)? < cfg.min_tracking_confidence {
                    self.spare.push(face);
                    continue;
                }
                face.detection = detection;
                // Two tracked regions that converged onto the same face: keep the first.
                if self.next_faces.iter().any(|f| iou(&f.bbox, &face.bbox) > 0.5) {
                    self.spare.push(face);
                    continue;
                }
                self.next_faces.push(face);
            }
            // Every tracked face was lost (a cut, a fast move): look for faces in this very frame
            // rather than the next one.
            if self.next_faces.is_empty() && !detect {
                self.rois.clear();
                detect = true;
                continue;
            }
            break;
        }
        std::mem::swap(&mut self.faces, &mut self.next_faces);
        self.stats.inference_seconds += started.elapsed().as_secs_f64();
        Ok(&self.faces)
    }

    /// Detects faces in the whole frame and, when it shows none and tile search is on, in the
    /// next tile.
    fn detect(&mut self, frame: &Frame, min_score: f32) -> tract_onnx::prelude::TractResult<()> {
        let whole = detector::letterbox(frame.width, frame.height);
        self.detect_in(frame, &whole, min_score)?;
        let tiles = detector::tile_count(frame.width, frame.height);
        if self.detections.is_empty() && self.config.search_tiles && tiles > 0 {
            let tile = detector::tile(frame.width, frame.height, self.next_tile % tiles);
            self.next_tile = self.next_tile.wrapping_add(1);
            self.detect_in(frame, &tile, min_score)?;
        }
        Ok(())
    }

    /// Runs the detector on the square `view` of the frame into `self.detections`.
    fn detect_in(&mut self, frame: &Frame, view: &Roi, min_score: f32) -> tract_onnx::prelude::TractResult<()> {
        sample_roi(frame, view, detector::INPUT_SIZE, false, 1.0 / 127.5, -1.0, self.detector.input());
        let t = Instant::now();
        self.detector.run()?;
        self.stats.detector_seconds += t.elapsed().as_secs_f64();
        self.stats.detector_runs += 1;
        let reg = self.detector.output(detector::NUM_ANCHORS * detector::NUM_VALUES);
        let logits = self.detector.output(detector::NUM_ANCHORS);
        detector::decode(reg, logits, &self.anchors, min_score, view, &mut self.candidates, &mut self.detections);
        Ok(())
    }

    /// Fills `face` from the region; returns the presence probability.
    fn landmarks(&mut self, frame: &Frame, roi: &Roi, face: &mut Face) -> tract_onnx::prelude::TractResult<f32> {
        sample_roi(frame, roi, landmarks::INPUT_SIZE, false, 1.0 / 255.0, 0.0, self.landmarker.input());
        let t = Instant::now();
        self.landmarker.run()?;
        self.stats.landmark_seconds += t.elapsed().as_secs_f64();
        self.stats.landmark_runs += 1;
        let score = landmarks::presence(self.landmarker.output(1).first().copied().unwrap_or(-100.0));
        face.landmarks.resize(NUM_LANDMARKS, [0.0; 3]);
        landmarks::decode(self.landmarker.output(NUM_LANDMARKS * 3), roi, &mut face.landmarks);
        face.score = score;
        face.roi = *roi;
        face.right_iris = None;
        face.left_iris = None;
        if !self.config.irises {
            face.eye_outputs = [None; 2];
        } else if score >= self.config.min_tracking_confidence {
            self.refiner.refine(frame, &self.landmarker, face, self.config.iris_interval, &mut self.stats)?;
        }
        face.bbox = landmarks::bounds(&face.landmarks);
        Ok(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, points: usize) -> Face {
        Face { score, landmarks: vec![[score; 3]; points], right_iris: Some([[score; 3]; 5]), ..Face::default() }
    }

    #[test]
    fn a_panic_becomes_an_error_and_the_next_call_runs() {
        assert_eq!(unwind_to_error(|| Ok::<_, String>(7)), Ok(7));
        assert_eq!(unwind_to_error::<()>(|| Err("bad frame".into())), Err("bad frame".into()));
        let index = 9;
        let panicked = unwind_to_error::<u8>(|| Ok([1u8, 2, 3][index]));
        assert!(panicked.as_ref().unwrap_err().starts_with(PANICKED), "{panicked:?}");
        assert!(panicked.unwrap_err().contains("index out of bounds"));
        assert_eq!(unwind_to_error::<()>(|| panic!("static")), Err(format!("{PANICKED}static")));
        assert_eq!(unwind_to_error(|| Ok::<_, String>(8)), Ok(8));
    }

    #[test]
    fn copy_faces_reuses_storage_and_copies_everything() {
        let mut dst = vec![face(1.0, 468), face(2.0, 468), face(3.0, 468)];
        let storage = dst[0].landmarks.as_ptr();
        let src = [face(4.0, 468), face(5.0, 10)];
        copy_faces(&mut dst, &src);
        assert_eq!(dst.len(), 2);
        assert_eq!(dst[0].landmarks.as_ptr(), storage, "landmarks reused");
        for (d, s) in dst.iter().zip(&src) {
            assert_eq!((d.score, &d.landmarks, d.right_iris), (s.score, &s.landmarks, s.right_iris));
        }
        copy_faces(&mut dst, &[face(6.0, 468), face(7.0, 468), face(8.0, 468)]);
        assert_eq!(dst.iter().map(|f| f.score).collect::<Vec<_>>(), [6.0, 7.0, 8.0]);
    }
}
