//! The GStreamer shell around [`crate::core::tracker::FaceMarker`].

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::DrawFlags;
use crate::core::draw::draw_face;
use crate::core::image::{Frame, FrameMut, PixelLayout};
use crate::core::model::default_model_dir;
use crate::core::tracker::{Config, Face, FaceMarker, Stats};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facemark",
        gst::DebugColorFlags::empty(),
        Some("Face landmarks"),
    )
});

/// Formats drawn on directly. Planar YUV would need its own drawing code; convert upstream.
const FORMATS: [gst_video::VideoFormat; 6] = [
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
];

const DEFAULT_DETECT_INTERVAL: u32 = 30;

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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_dir: None,
            max_faces: 1,
            min_detection_confidence: 0.5,
            min_tracking_confidence: 0.5,
            draw: DrawFlags::default(),
            tracking: true,
            detect_interval: DEFAULT_DETECT_INTERVAL,
            emit_messages: false,
            irises: true,
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
        }
    }

    fn model_dir(&self) -> PathBuf {
        self.model_dir
            .as_ref()
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(default_model_dir)
    }
}

#[derive(Default)]
pub struct FaceMark {
    settings: Mutex<Settings>,
    marker: Mutex<Option<FaceMarker>>,
    /// A copy of the marker's statistics, so that reading `stats` never waits for inference.
    stats: Mutex<Stats>,
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
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-detection-confidence")
                    .nick("Minimum detection confidence")
                    .blurb("Detector score a face needs")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.5)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("min-tracking-confidence")
                    .nick("Minimum tracking confidence")
                    .blurb("Landmark face-presence score below which a face counts as lost")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.5)
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
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("detect-interval")
                    .nick("Detection interval")
                    .blurb("While tracking, run the detector anyway every this many frames (0: only when a face is lost)")
                    .default_value(DEFAULT_DETECT_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("irises")
                    .nick("Irises")
                    .blurb("Run the iris model (when iris_landmark.onnx is installed): 478 points instead of 468")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("emit-messages")
                    .nick("Emit messages")
                    .blurb("Post a `facemark` element message with the faces of every frame")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("frames-in, inferences, dropped-inferences, mean-inference-ms, detector-runs, landmark-runs")
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
            "min-detection-confidence" => {
                s.min_detection_confidence = value.get().expect("type checked upstream")
            }
            "min-tracking-confidence" => {
                s.min_tracking_confidence = value.get().expect("type checked upstream")
            }
            "draw" => s.draw = value.get().expect("type checked upstream"),
            "tracking" => s.tracking = value.get().expect("type checked upstream"),
            "detect-interval" => s.detect_interval = value.get().expect("type checked upstream"),
            "emit-messages" => s.emit_messages = value.get().expect("type checked upstream"),
            "irises" => s.irises = value.get().expect("type checked upstream"),
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
                "Finds faces (BlazeFace) and their 468-point mesh (Face Mesh) with tract-onnx, \
                 draws them and attaches them as region-of-interest metadata and messages",
                "whipcast",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS)
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady {
            let (dir, config) = {
                let s = self.settings.lock().unwrap();
                (s.model_dir(), s.config())
            };
            match FaceMarker::new(&dir, config) {
                Ok(marker) => {
                    gst::info!(CAT, imp = self, "loaded models from {}", dir.display());
                    *self.marker.lock().unwrap() = Some(marker);
                    *self.stats.lock().unwrap() = Stats::default();
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
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) = event.view()
            && let Some(m) = self.marker.lock().unwrap().as_mut()
        {
            m.reset();
        }
        self.parent_sink_event(event)
    }
}

impl VideoFilterImpl for FaceMark {
    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let layout = match frame.format() {
            gst_video::VideoFormat::Rgba => PixelLayout::Rgba,
            gst_video::VideoFormat::Bgra => PixelLayout::Bgra,
            gst_video::VideoFormat::Rgbx => PixelLayout::Rgbx,
            gst_video::VideoFormat::Bgrx => PixelLayout::Bgrx,
            gst_video::VideoFormat::Rgb => PixelLayout::Rgb,
            gst_video::VideoFormat::Bgr => PixelLayout::Bgr,
            _ => return Err(gst::FlowError::NotNegotiated),
        };
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let pts = frame.buffer().pts();

        let mut guard = self.marker.lock().unwrap();
        let Some(marker) = guard.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::StateChange, ("Models not loaded"));
            return Err(gst::FlowError::Error);
        };
        marker.set_config(settings.config());

        let data = frame.plane_data_mut(0).map_err(|_| gst::FlowError::Error)?;
        if let Err(e) = marker.process(&Frame::new(data, width, height, stride, layout)) {
            gst::element_imp_error!(
                self,
                gst::LibraryError::Failed,
                ("Inference failed"),
                ["{e:#}"]
            );
            return Err(gst::FlowError::Error);
        }
        *self.stats.lock().unwrap() = marker.stats();
        let faces = marker.faces();
        gst::trace!(CAT, imp = self, "{} face(s) at {:?}", faces.len(), pts);
        if !settings.draw.is_empty() {
            let mut canvas = FrameMut::new(data, width, height, stride, layout);
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
            let (rw, rh) = (
                clamp(x1, width).saturating_sub(rx),
                clamp(y1, height).saturating_sub(ry),
            );
            let mut meta =
                gst_video::VideoRegionOfInterestMeta::add(buffer, "face", (rx, ry, rw, rh));
            meta.add_param(
                gst::Structure::builder("facemark/landmarks")
                    .field("score", face.score as f64)
                    .field("landmarks", landmark_array(face))
                    .build(),
            );
        }

        if settings.emit_messages {
            let list = gst::Array::new(faces.iter().map(|f| face_structure(f).to_send_value()));
            let s = gst::Structure::builder("facemark")
                .field("timestamp", pts.map(|t| t.nseconds()).unwrap_or(u64::MAX))
                .field("frame-width", width as i32)
                .field("frame-height", height as i32)
                .field("faces", list)
                .build();
            drop(guard);
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
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
        let stats = *self.stats.lock().unwrap();
        let mean_ms = if stats.frames > 0 {
            stats.inference_seconds * 1000.0 / stats.frames as f64
        } else {
            0.0
        };
        gst::Structure::builder("stats")
            .field("frames-in", stats.frames)
            .field("inferences", stats.frames)
            // Inference runs inline on the streaming thread: no frame is ever skipped.
            .field("dropped-inferences", 0u64)
            .field("mean-inference-ms", mean_ms)
            .field("detector-runs", stats.detector_runs)
            .field("landmark-runs", stats.landmark_runs)
            .build()
    }
}
