//! The GStreamer shell around [`crate::core::tracker::FaceMarker`].

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::worker::{Done, Job, SharedMarker, Worker};
use super::{DrawFlags, Mode, Runtime};
use crate::core::draw::draw_face;
use crate::core::image::{Chroma, Frame, FrameMut, OwnedFrame, PixelFormat, PixelLayout, YuvColor};
use crate::core::model::default_model_dir;
use crate::core::tracker::{Config, Face, FaceMarker, Stats};

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facemark", gst::DebugColorFlags::empty(), Some("Face landmarks")));

/// Formats read and drawn on directly, without a conversion.
const FORMATS: [gst_video::VideoFormat; 8] = [
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Nv12,
];

/// How the core reads a negotiated format; `None` for formats outside [`FORMATS`].
fn pixel_format(info: &gst_video::VideoInfo) -> Option<PixelFormat> {
    use gst_video::VideoFormat as F;
    let packed = |layout| Some(PixelFormat::Packed(layout));
    match info.format() {
        F::Rgba => packed(PixelLayout::Rgba),
        F::Bgra => packed(PixelLayout::Bgra),
        F::Rgbx => packed(PixelLayout::Rgbx),
        F::Bgrx => packed(PixelLayout::Bgrx),
        F::Rgb => packed(PixelLayout::Rgb),
        F::Bgr => packed(PixelLayout::Bgr),
        F::I420 => Some(PixelFormat::Yuv420(Chroma::Planar, yuv_color(info))),
        F::Nv12 => Some(PixelFormat::Yuv420(Chroma::Interleaved, yuv_color(info))),
        _ => None,
    }
}

/// The caps' YUV matrix and range; unknown matrices as GStreamer guesses them (BT.601 up to
/// 576 lines, BT.709 above).
fn yuv_color(info: &gst_video::VideoInfo) -> YuvColor {
    use gst_video::VideoColorMatrix as M;
    let colorimetry = info.colorimetry();
    let (kr, kb) = match colorimetry.matrix() {
        M::Bt601 => (0.299, 0.114),
        M::Bt709 => (0.2126, 0.0722),
        M::Bt2020 => (0.2627, 0.0593),
        M::Fcc => (0.30, 0.11),
        M::Smpte240m => (0.212, 0.087),
        _ if info.height() > 576 => (0.2126, 0.0722),
        _ => (0.299, 0.114),
    };
    let full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    YuvColor::new(kr, kb, full_range)
}

#[derive(Clone, Debug)]
struct Settings {
    model_dir: Option<String>,
    max_faces: u32,
    min_detection_confidence: f64,
    min_tracking_confidence: f64,
    draw: DrawFlags,
    tracking: bool,
    detect_interval: u32,
    emit_messages: bool,
    irises: bool,
    iris_interval: u32,
    search_tiles: bool,
    mode: Mode,
    runtime: Runtime,
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
    fn config(&self) -> Config {
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

    fn model_dir(&self) -> PathBuf {
        self.model_dir.as_ref().filter(|d| !d.is_empty()).map(PathBuf::from).unwrap_or_else(default_model_dir)
    }
}

/// The counters behind the `stats` property.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    frames_in: u64,
    /// Frames handed to inference (inline, or to the worker).
    inferences: u64,
    /// Frames that found the worker busy and went on with the newest finished result.
    dropped: u64,
    marker: Stats,
}

/// Streaming state, reset at every start.
#[derive(Default)]
struct State {
    format: Option<PixelFormat>,
    /// From the caps' framerate, when it has one.
    frame_duration: Option<gst::ClockTime>,
    /// Whether upstream is live (asked once per caps, for `mode=auto`).
    live: Option<bool>,
    worker: Option<Worker>,
    /// The next job's frame copy and face storage (kept between jobs to reuse them).
    spare_frame: Option<OwnedFrame>,
    spare_faces: Vec<Face>,
    /// `mode=latest`: the newest finished result and the PTS of the frame it was found in.
    latest: Vec<Face>,
    latest_pts: Option<gst::ClockTime>,
    /// Forget tracked faces before the next inference (after a flush or a new stream).
    reset_pending: bool,
    counters: Counters,
}

impl State {
    /// Takes in a finished job's result.
    fn accept(&mut self, done: Done) -> Result<(), String> {
        if let Some(w) = self.worker.as_mut() {
            w.busy = false;
        }
        self.spare_frame = Some(done.frame);
        self.spare_faces = std::mem::replace(&mut self.latest, done.faces);
        self.latest_pts = done.pts;
        self.counters.marker = done.stats;
        done.error.map_or(Ok(()), Err)
    }

    /// Takes in the worker's answer if there is one, waiting for it up to `wait`.
    fn poll(&mut self, wait: Option<std::time::Duration>) -> Result<(), String> {
        let Some(w) = self.worker.as_ref().filter(|w| w.busy) else {
            return Ok(());
        };
        let answer = match wait {
            Some(wait) => w.done.recv_timeout(wait).ok(),
            None => w.done.try_recv().ok(),
        };
        answer.map_or(Ok(()), |done| self.accept(done))
    }

    /// Waits for the job in flight, if any.
    fn finish(&mut self) -> Result<(), String> {
        match self.worker.as_ref().filter(|w| w.busy) {
            Some(w) => match w.done.recv() {
                Ok(done) => self.accept(done),
                Err(_) => Err("the inference thread stopped".into()),
            },
            None => Ok(()),
        }
    }
}

#[derive(Default)]
pub struct FaceMark {
    settings: Mutex<Settings>,
    /// Shared with the worker thread in `mode=latest`.
    marker: SharedMarker,
    state: Mutex<State>,
    /// A copy of the counters, so that reading `stats` never waits for inference.
    stats: Mutex<Counters>,
    /// What runs each model (the `runtime` field of `stats`), set when the models load.
    runtimes: Mutex<String>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceMark {
    const NAME: &'static str = "GstFaceMark";
    type Type = super::FaceMark;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceMark {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model-dir")
                    .nick("Model folder")
                    .blurb(
                        "Folder with face_detection_short_range.onnx and face_landmark.onnx \
                         (default: $FACEMARK_MODEL_DIR, else $XDG_DATA_HOME/whipcast/models; \
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
                    .blurb("Run the iris model (when iris_landmark.onnx is installed): 478 points instead of 468")
                    .default_value(DEFAULTS.irises)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("iris-interval")
                    .nick("Iris interval")
                    .blurb("Run the iris model for each eye of a tracked face every this many frames, the eyes in turn (1: both eyes every frame; 2 halves the iris model's cost); between runs an eye's iris keeps its place relative to that frame's eye corners")
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
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        match pspec.name() {
            "model-dir" => s.model_dir = value.get().expect("type checked upstream"),
            "max-faces" => s.max_faces = value.get().expect("type checked upstream"),
            "min-detection-confidence" => s.min_detection_confidence = value.get().expect("type checked upstream"),
            "min-tracking-confidence" => s.min_tracking_confidence = value.get().expect("type checked upstream"),
            "draw" => s.draw = value.get().expect("type checked upstream"),
            "tracking" => s.tracking = value.get().expect("type checked upstream"),
            "detect-interval" => s.detect_interval = value.get().expect("type checked upstream"),
            "emit-messages" => s.emit_messages = value.get().expect("type checked upstream"),
            "irises" => s.irises = value.get().expect("type checked upstream"),
            "iris-interval" => s.iris_interval = value.get().expect("type checked upstream"),
            "search-tiles" => s.search_tiles = value.get().expect("type checked upstream"),
            "mode" => s.mode = value.get().expect("type checked upstream"),
            "runtime" => s.runtime = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "model-dir" => s.model_dir().to_string_lossy().to_value(),
            "max-faces" => s.max_faces.to_value(),
            "min-detection-confidence" => s.min_detection_confidence.to_value(),
            "min-tracking-confidence" => s.min_tracking_confidence.to_value(),
            "draw" => s.draw.to_value(),
            "tracking" => s.tracking.to_value(),
            "detect-interval" => s.detect_interval.to_value(),
            "emit-messages" => s.emit_messages.to_value(),
            "irises" => s.irises.to_value(),
            "iris-interval" => s.iris_interval.to_value(),
            "search-tiles" => s.search_tiles.to_value(),
            "mode" => s.mode.to_value(),
            "runtime" => s.runtime.to_value(),
            "stats" => {
                drop(s);
                self.stats().to_value()
            }
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for FaceMark {}

impl ElementImpl for FaceMark {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face landmarks",
                "Filter/Effect/Video/Analyzer",
                "Finds faces (BlazeFace), their 468-point mesh (Face Mesh) and irises on the CPU, \
                 draws them and attaches them as region-of-interest metadata and messages",
                "whipcast",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new().format_list(FORMATS).build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            let (dir, config) = {
                let s = self.settings.lock().unwrap();
                (s.model_dir(), s.config())
            };
            match FaceMarker::new(&dir, config) {
                Ok(marker) => {
                    let runtimes = marker.runtimes();
                    gst::info!(CAT, imp = self, "loaded models from {} ({runtimes})", dir.display());
                    *self.runtimes.lock().unwrap() = runtimes;
                    *self.marker.lock().unwrap() = Some(marker);
                    *self.stats.lock().unwrap() = Counters::default();
                }
                Err(e) => {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        ("{e}"),
                        ["model folder {}", dir.display()]
                    );
                    return Err(gst::StateChangeError);
                }
            }
        }
        let ret = self.parent_change_state(transition)?;
        if transition == gst::StateChange::ReadyToNull {
            *self.marker.lock().unwrap() = None;
        }
        Ok(ret)
    }
}

impl BaseTransformImpl for FaceMark {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) = event.view() {
            let mut state = self.state.lock().unwrap();
            state.reset_pending = true;
            state.latest.clear();
        }
        self.parent_sink_event(event)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Joined outside the lock: the worker finishes its current job first.
        let worker = self.state.lock().unwrap().worker.take();
        drop(worker);
        *self.state.lock().unwrap() = State::default();
        Ok(())
    }
}

impl VideoFilterImpl for FaceMark {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let format = pixel_format(in_info)
            .ok_or_else(|| gst::loggable_error!(CAT, "unsupported format {:?}", in_info.format()))?;
        let fps = in_info.fps();
        {
            let mut state = self.state.lock().unwrap();
            state.format = Some(format);
            state.frame_duration = (fps.numer() > 0 && fps.denom() > 0).then(|| {
                gst::ClockTime::SECOND
                    .mul_div_floor(fps.denom() as u64, fps.numer() as u64)
                    .unwrap_or(gst::ClockTime::ZERO)
            });
            state.live = None;
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let mut state = self.state.lock().unwrap();
        let format = state.format.ok_or(gst::FlowError::NotNegotiated)?;
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let pts = frame.buffer().pts();
        let strides = {
            let s = frame.plane_stride();
            [0, 1, 2].map(|p| s.get(p).map_or(0, |v| *v as usize))
        };
        let latest_mode = match settings.mode {
            Mode::Inline => false,
            Mode::Latest => true,
            Mode::Auto => *state.live.get_or_insert_with(|| self.upstream_is_live()),
        };
        state.counters.frames_in += 1;

        let [p0, p1, p2, _] = frame.planes_data_mut();
        let mut canvas = FrameMut::with_planes(width, height, format, [p0, p1, p2], strides);
        let mut marker_guard = None;
        let (faces, faces_pts): (&[Face], _) = if latest_mode {
            if let Err(e) = self.hand_to_worker(&mut state, &canvas.as_frame(), &settings, pts) {
                return Err(self.inference_failed(&e));
            }
            (&state.latest, state.latest_pts)
        } else {
            if let Err(e) = state.finish() {
                return Err(self.inference_failed(&e));
            }
            let guard = marker_guard.insert(self.marker.lock().unwrap_or_else(|e| e.into_inner()));
            let Some(marker) = guard.as_mut() else {
                gst::element_imp_error!(self, gst::CoreError::StateChange, ("Models not loaded"));
                return Err(gst::FlowError::Error);
            };
            if std::mem::take(&mut state.reset_pending) {
                marker.reset();
            }
            marker.set_config(settings.config());
            state.counters.inferences += 1;
            if let Err(e) = marker.process_or_error(&canvas.as_frame()) {
                return Err(self.inference_failed(&e));
            }
            state.counters.marker = marker.stats();
            (marker.faces(), pts)
        };
        *self.stats.lock().unwrap() = state.counters;
        gst::trace!(CAT, imp = self, "{} face(s) at {:?}", faces.len(), pts);
        if !settings.draw.is_empty() {
            for face in faces {
                draw_face(&mut canvas, face, settings.draw.bits());
            }
        }

        // SAFETY: in-place transforms get a writable buffer; metas live outside the mapped
        // memory, and the frame's data is not touched again after this point.
        let buffer = unsafe { gst::BufferRef::from_mut_ptr((*frame.as_mut_ptr()).buffer) };
        for face in faces {
            let [x0, y0, x1, y1] = face.bbox;
            let clamp = |v: f32, max: usize| v.round().clamp(0.0, max as f32) as u32;
            let (rx, ry) = (clamp(x0, width), clamp(y0, height));
            let (rw, rh) = (clamp(x1, width).saturating_sub(rx), clamp(y1, height).saturating_sub(ry));
            let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, "face", (rx, ry, rw, rh));
            meta.add_param(
                gst::Structure::builder("facemark/landmarks")
                    .field("score", face.score as f64)
                    .field("landmarks", landmark_array(face))
                    .build(),
            );
        }

        let message = settings.emit_messages.then(|| {
            let list = gst::Array::new(faces.iter().map(|f| face_structure(f).to_send_value()));
            let timestamp = |t: Option<gst::ClockTime>| t.map(|t| t.nseconds()).unwrap_or(u64::MAX);
            gst::Structure::builder("facemark")
                .field("timestamp", timestamp(pts))
                .field("faces-timestamp", timestamp(faces_pts))
                .field("frame-width", width as i32)
                .field("frame-height", height as i32)
                .field("faces", list)
                .build()
        });
        drop(marker_guard);
        drop(state);
        if let Some(s) = message {
            let _ = self.obj().post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// x0, y0, z0, x1, ... in frame pixels (z in x's scale).
fn landmark_array(face: &Face) -> gst::Array {
    let mut values = Vec::with_capacity(face.landmarks.len() * 3 + 30);
    for p in face.points() {
        values.extend(p.iter().map(|v| (*v as f64).to_send_value()));
    }
    gst::Array::from_values(values)
}

fn face_structure(face: &Face) -> gst::Structure {
    let [x0, y0, x1, y1] = face.bbox;
    gst::Structure::builder("face")
        .field("score", face.score as f64)
        .field("x", x0 as f64)
        .field("y", y0 as f64)
        .field("width", (x1 - x0) as f64)
        .field("height", (y1 - y0) as f64)
        .field("landmarks", landmark_array(face))
        .build()
}

impl FaceMark {
    fn stats(&self) -> gst::Structure {
        let c = *self.stats.lock().unwrap();
        let runs = c.marker.frames;
        let mean_ms = if runs > 0 { c.marker.inference_seconds * 1000.0 / runs as f64 } else { 0.0 };
        gst::Structure::builder("stats")
            .field("frames-in", c.frames_in)
            .field("inferences", c.inferences)
            .field("dropped-inferences", c.dropped)
            .field("mean-inference-ms", mean_ms)
            .field("inference-seconds", c.marker.inference_seconds)
            .field("detector-runs", c.marker.detector_runs)
            .field("landmark-runs", c.marker.landmark_runs)
            .field("iris-runs", c.marker.iris_runs)
            .field("runtime", self.runtimes.lock().unwrap().as_str())
            .build()
    }

    /// Whether the element upstream says it is live (a camera, a network source).
    fn upstream_is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        let live = self.obj().sink_pad().peer_query(&mut query) && query.result().0;
        gst::debug!(CAT, imp = self, "upstream is live: {live}");
        live
    }

    /// `mode=latest`: takes in the worker's newest result; gives it this frame if it is idle
    /// (and waits for the answer up to half a frame duration, so that a fast enough worker
    /// still annotates every frame with its own result); counts the frame as dropped if busy.
    fn hand_to_worker(
        &self,
        state: &mut State,
        frame: &Frame,
        settings: &Settings,
        pts: Option<gst::ClockTime>,
    ) -> Result<(), String> {
        state.poll(None)?;
        if state.worker.as_ref().is_some_and(|w| w.busy) {
            state.counters.dropped += 1;
            return Ok(());
        }
        if state.worker.is_none() {
            let worker =
                Worker::spawn(self.marker.clone()).map_err(|e| format!("cannot start the inference thread: {e}"))?;
            state.worker = Some(worker);
        }
        let mut copy = state.spare_frame.take().unwrap_or_default();
        copy.fill_from(frame);
        let job = Job {
            frame: copy,
            faces: std::mem::take(&mut state.spare_faces),
            config: settings.config(),
            reset: std::mem::take(&mut state.reset_pending),
            pts,
        };
        let worker = state.worker.as_mut().expect("started above");
        worker.jobs.as_ref().and_then(|jobs| jobs.send(job).ok()).ok_or("the inference thread stopped")?;
        worker.busy = true;
        state.counters.inferences += 1;
        let wait = state.frame_duration.map(|d| std::time::Duration::from(d / 2));
        match wait {
            Some(wait) if !wait.is_zero() => state.poll(Some(wait)),
            _ => Ok(()),
        }
    }

    fn inference_failed(&self, detail: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::LibraryError::Failed, ("Inference failed"), ["{detail}"]);
        gst::FlowError::Error
    }
}
