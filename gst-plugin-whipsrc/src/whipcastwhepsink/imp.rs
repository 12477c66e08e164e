//! The element: its state and properties, the request pads (each an appsink whose frames go to
//! every viewer, see `tracks`), and serving its stream while started (the viewers themselves:
//! `audience`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::audience::Handle;
use super::settings::Settings;
use super::tracks::Track;
use super::viewer::Viewer;
use crate::endpoint;
use crate::server::{self, Registration};
use crate::whip::Protocol;

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("whipcastwhepsink", gst::DebugColorFlags::empty(), Some("WHEP server sink"))
});

#[derive(Default)]
pub(super) struct State {
    pub(super) registration: Option<Registration>,
    /// Ends viewers whose connection failed or went silent, while started.
    pub(super) watchdog: Option<tokio::task::JoinHandle<()>>,
    pub(super) viewers: HashMap<String, Viewer>,
    pub(super) viewers_started: u64,
    pub(super) viewers_ended: u64,
    /// Viewers admitted and being set up: counted against max-viewers.
    pub(super) starting: usize,
}

pub struct WhepServerSink {
    pub(super) settings: Mutex<Settings>,
    pub(super) tracks: Mutex<Vec<Arc<Track>>>,
    pub(super) state: Mutex<State>,
    /// Time zero of the key frame requests' clock.
    pub(super) epoch: Instant,
}

#[glib::object_subclass]
impl ObjectSubclass for WhepServerSink {
    const NAME: &'static str = "WhipcastWhepServerSink";
    type Type = super::WhepServerSink;
    type ParentType = gst::Bin;

    fn new() -> Self {
        Self {
            settings: Mutex::new(Settings::default()),
            tracks: Mutex::default(),
            state: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

impl WhepServerSink {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let endpoint = &settings.endpoint;
        let settings_error = |e: String| gst::error_msg!(gst::ResourceError::Settings, ("{e}"));
        endpoint.check().map_err(settings_error)?;
        let address = endpoint.socket_address().map_err(settings_error)?;
        let tls = endpoint.tls().map_err(settings_error)?;
        if endpoint.required_token().is_none() {
            gst::warning!(CAT, imp = self, "No token set: anyone may watch /whep/{}", endpoint.stream);
        }
        if let Some(took) = endpoint::prepare_webrtc() {
            gst::debug!(CAT, imp = self, "WebRTC plugins loaded and DTLS certificate made in {took:?}");
        }
        let handle = Arc::new(Handle(self.obj().downgrade()));
        let registration = server::register(address, tls, Protocol::Whep, &endpoint.stream, handle)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("{e}")))?;
        gst::info!(CAT, imp = self, "Serving WHEP on {address}/whep/{}", endpoint.stream);
        let watchdog = endpoint::spawn_watch(self.obj().downgrade(), |e| e.imp().watch());
        let mut state = self.state.lock().unwrap();
        state.registration = Some(registration);
        state.watchdog = Some(watchdog);
        Ok(())
    }

    fn stop(&self) {
        let ids: Vec<String> = {
            let mut state = self.state.lock().unwrap();
            state.registration = None;
            if let Some(watchdog) = state.watchdog.take() {
                watchdog.abort();
            }
            state.viewers.keys().cloned().collect()
        };
        for id in ids {
            self.end_viewer(&id, "element stopped");
        }
    }
}

impl ObjectImpl for WhepServerSink {
    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SINK);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut specs = Settings::param_specs();
            specs.push(
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("viewers-started, viewers-ended and viewers: per viewer its id, remote-address, user-agent, duration (s), connection-state, frames-sent and frames-skipped (video frames; skipped while it waits for a key frame: joined mid-GOP or fell behind), bytes-sent (audio and video), keyframe-requests (PLI/FIR it sent)")
                    .read_only()
                    .build(),
            );
            specs
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // id, remote address, user agent (also the element message whepserversink-viewer-added)
                glib::subclass::Signal::builder("viewer-added")
                    .param_types([String::static_type(), String::static_type(), String::static_type()])
                    .build(),
                // id, reason (also the element message whepserversink-viewer-removed)
                glib::subclass::Signal::builder("viewer-removed")
                    .param_types([String::static_type(), String::static_type()])
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.settings.lock().unwrap().set(pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        self.settings.lock().unwrap().get(pspec.name())
    }
}

impl WhepServerSink {
    /// Puts a listed track's appsink into the element and its pad on it (no lock held: this
    /// emits element-added and pad-added).
    fn add_track(&self, track: &Arc<Track>) -> Option<()> {
        let appsink = &track.appsink;
        self.obj().add(appsink).ok()?;
        track.ghost.set_target(Some(&appsink.static_pad("sink")?)).ok()?;
        let element = self.obj().downgrade();
        let weak_track = Arc::downgrade(track);
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    let (Some(element), Some(track)) = (element.upgrade(), weak_track.upgrade()) else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    element.imp().distribute(&track, &sample)
                })
                .build(),
        );
        let _ = appsink.sync_state_with_parent();
        let _ = track.ghost.set_active(true);
        self.obj().add_pad(&track.ghost).ok()
    }
}

impl GstObjectImpl for WhepServerSink {}

impl BinImpl for WhepServerSink {}

impl ElementImpl for WhepServerSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "WHEP server sink",
                "Sink/Network/WebRTC",
                "A WHEP endpoint: viewers (browsers, whepsrc) POST an offer to http(s)://<address>:<port>/whep/<stream> and are sent what flows into video_%u and audio_%u (encoded H.264, H.265, VP8, VP9, AV1, Opus), without re-encoding. Also registered as whepserversink, its first name (gst-plugins-rs has an element of that name too)",
                "whipcast developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let video = gst::Caps::builder_full()
                .structure(
                    gst::Structure::builder("video/x-h264")
                        .field("stream-format", gst::List::new(["byte-stream", "avc"]))
                        .field("alignment", "au")
                        .build(),
                )
                .structure(
                    gst::Structure::builder("video/x-h265")
                        .field("stream-format", gst::List::new(["byte-stream", "hvc1", "hev1"]))
                        .field("alignment", "au")
                        .build(),
                )
                .structure(gst::Structure::new_empty("video/x-vp8"))
                .structure(gst::Structure::new_empty("video/x-vp9"))
                .structure(
                    gst::Structure::builder("video/x-av1")
                        .field("stream-format", "obu-stream")
                        .field("alignment", "tu")
                        .build(),
                )
                .build();
            let audio = gst::Caps::builder("audio/x-opus").build();
            [("video_%u", video), ("audio_%u", audio)]
                .into_iter()
                .filter_map(|(name, caps)| {
                    gst::PadTemplate::new(name, gst::PadDirection::Sink, gst::PadPresence::Request, &caps).ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        template: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let video = template.name_template() == "video_%u";
        // The name is taken and the track listed under the lock; the pad is added after it, since
        // adding emits element-added and pad-added, whose handlers may request another pad.
        let track = {
            let mut tracks = self.tracks.lock().unwrap();
            let prefix = if video { "video" } else { "audio" };
            let name = match name {
                Some(name) if tracks.iter().any(|t| t.pad_name == name) => return None,
                Some(name) => name.to_owned(),
                None => (0..).map(|n| format!("{prefix}_{n}")).find(|n| tracks.iter().all(|t| &t.pad_name != n))?,
            };
            let appsink = gst_app::AppSink::builder().name(format!("{name}-sink")).sync(false).async_(false).build();
            appsink.set_property("enable-last-sample", false);
            let ghost = gst::GhostPad::builder_from_template(template).name(name.as_str()).build();
            let track = Arc::new(Track { pad_name: name, video, appsink, ghost, state: Mutex::default() });
            tracks.push(track.clone());
            track
        };
        if self.add_track(&track).is_none() {
            self.tracks.lock().unwrap().retain(|t| !Arc::ptr_eq(t, &track));
            let _ = self.obj().remove(&track.appsink);
            return None;
        }
        Some(track.ghost.clone().upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let track = {
            let mut tracks = self.tracks.lock().unwrap();
            let index = tracks.iter().position(|t| t.ghost.upcast_ref::<gst::Pad>() == pad);
            index.map(|i| tracks.remove(i))
        };
        if let Some(track) = track {
            let _ = track.appsink.set_state(gst::State::Null);
            let _ = self.obj().remove(&track.appsink);
            let _ = self.obj().remove_pad(&track.ghost);
        }
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused
            && let Err(message) = self.start()
        {
            self.post_error_message(message);
            return Err(gst::StateChangeError);
        }
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::PausedToReady {
            self.stop();
        }
        result
    }
}
