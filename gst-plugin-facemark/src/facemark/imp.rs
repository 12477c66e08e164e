//! The GStreamer shell around [`crate::core::tracker::FaceMarker`].
//!
//! Its helpers are beside it: the settings and property specs (`settings.rs`), the streaming
//! state (`state.rs`), the caps formats (`format.rs`), the metadata values (`meta.rs`) and the
//! `mode=latest` inference thread (`worker.rs`).

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::Mode;
use super::format::{FORMATS, pixel_format};
use super::meta::{face_structure, landmark_array};
use super::settings::{Settings, param_specs};
use super::state::{Counters, State};
use super::worker::{Job, SharedMarker, Worker};
use crate::core::draw::draw_face;
use crate::core::image::{Frame, FrameMut};
use crate::core::tracker::{Face, FaceMarker};

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("facemark", gst::DebugColorFlags::empty(), Some("Face landmarks")));

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
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(param_specs);
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
