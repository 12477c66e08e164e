//! The element: its request pads (each an appsink whose frames go to every viewer), the
//! viewers coming and going, and their stats.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use super::settings::Settings;
use super::viewer::{self, Viewer};
use crate::endpoint::{self, gone};
use crate::server::{self, Created, Endpoint, Patched, Peer, RUNTIME, Registration};
use crate::viewers::{self, DEFAULT_GOP_LIMITS, Gate, GopCache, KeyRequests, Verdict};
use crate::whip::{Protocol, Rejection, StreamAuth};

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("whipcastwhepsink", gst::DebugColorFlags::empty(), Some("WHEP server sink"))
});

/// The SDP name of what `caps` carry.
pub(super) fn codec_of(caps: &gst::CapsRef) -> Option<&'static str> {
    Some(match caps.structure(0)?.name().as_str() {
        "video/x-h264" => "H264",
        "video/x-h265" => "H265",
        "video/x-vp8" => "VP8",
        "video/x-vp9" => "VP9",
        "video/x-av1" => "AV1",
        "audio/x-opus" => "OPUS",
        _ => return None,
    })
}

/// One viewer's share of one pad's stream.
pub(super) struct Feed {
    pub(super) viewer: String,
    pub(super) appsrc: gst_app::AppSrc,
    pub(super) gate: Gate,
    pub(super) counters: Arc<FeedCounters>,
}

#[derive(Debug, Default)]
pub(super) struct FeedCounters {
    pub(super) frames_sent: AtomicU64,
    pub(super) frames_skipped: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
}

#[derive(Default)]
pub(super) struct TrackState {
    pub(super) caps: Option<gst::Caps>,
    pub(super) cache: Option<GopCache<gst::Buffer>>,
    pub(super) feeds: Vec<Feed>,
    pub(super) key_requests: KeyRequests,
}

/// What flows into one request pad.
pub(super) struct Track {
    pub(super) pad_name: String,
    pub(super) video: bool,
    pub(super) appsink: gst_app::AppSink,
    pub(super) ghost: gst::GhostPad,
    pub(super) state: Mutex<TrackState>,
}

impl Track {
    pub(super) fn codec(&self) -> Option<&'static str> {
        self.state.lock().unwrap().caps.as_ref().and_then(|c| codec_of(c))
    }
}

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

/// The server's handle on this element.
struct Handle(glib::WeakRef<super::WhepServerSink>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&WhepServerSink) -> T) -> Option<T> {
        self.0.upgrade().map(|e| f(e.imp()))
    }
}

impl Endpoint for Handle {
    fn auth(&self) -> StreamAuth {
        self.with(|imp| match imp.settings.lock().unwrap().endpoint.required_token() {
            Some(token) => StreamAuth::Token(token),
            None => StreamAuth::Open,
        })
        .unwrap_or(StreamAuth::Unknown)
    }

    fn sessions(&self) -> usize {
        self.with(|imp| imp.state.lock().unwrap().viewers.len()).unwrap_or(0)
    }

    /// max-viewers is the element's own (503 from `create`), not a server-wide limit.
    fn max_sessions(&self) -> u32 {
        0
    }

    fn posts_per_address(&self) -> u32 {
        crate::ratelimit::DEFAULT_POSTS_PER_ADDRESS
    }

    fn replaces(&self) -> bool {
        false
    }

    fn create(&self, offer: String, peer: Peer) -> oneshot::Receiver<Result<Created, Rejection>> {
        let (tx, rx) = oneshot::channel();
        let result = self.with(|imp| imp.add_viewer(&offer, peer)).unwrap_or_else(|| Err(gone()));
        let _ = tx.send(result);
        rx
    }

    fn delete(&self, resource: &str) -> Result<(), Rejection> {
        self.with(|imp| imp.delete_viewer(resource)).unwrap_or_else(|| Err(gone()))
    }

    fn patch(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        self.with(|imp| imp.patch_viewer(resource, sdpfrag, if_match)).unwrap_or_else(|| Err(gone()))
    }
}

impl WhepServerSink {
    /// The pads' tracks that have caps, and their codecs, once every pad has caps or after `wait`.
    pub(super) fn tracks_with_codecs(&self, wait: Duration) -> Vec<(Arc<Track>, &'static str)> {
        let deadline = Instant::now() + wait;
        loop {
            let tracks = self.tracks.lock().unwrap().clone();
            let all = tracks.len();
            let known: Vec<_> = tracks.into_iter().filter_map(|t| t.codec().map(|c| (t, c))).collect();
            if known.len() == all || Instant::now() >= deadline {
                return known;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A viewer's offer: admitted (or 503), answered (or 4xx/5xx); its frames start once it is
    /// connected.
    fn add_viewer(&self, offer: &str, peer: Peer) -> Result<Created, Rejection> {
        let settings = self.settings.lock().unwrap().clone();
        {
            let mut state = self.state.lock().unwrap();
            if state.registration.is_none() {
                return Err(gone());
            }
            if !viewers::admits(state.viewers.len() + state.starting, settings.max_viewers) {
                return Err(Rejection::new(
                    503,
                    format!("{} viewers already watch (max-viewers)", state.viewers.len()),
                )
                .with_header("retry-after", "10"));
            }
            state.starting += 1;
        }
        let result = viewer::start(self, &settings, offer, peer);
        let mut state = self.state.lock().unwrap();
        state.starting -= 1;
        let (viewer, created) = result?;
        if state.registration.is_none() {
            drop(state);
            viewer::stop(viewer);
            return Err(gone());
        }
        state.viewers_started += 1;
        let (id, address, agent) =
            (viewer.id.clone(), viewer.peer.address.to_string(), viewer.peer.user_agent.clone().unwrap_or_default());
        state.viewers.insert(viewer.id.clone(), viewer);
        drop(state);
        gst::info!(CAT, imp = self, "Viewer {id} from {address} answered");
        self.obj().emit_by_name::<()>("viewer-added", &[&id, &address, &agent]);
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("whepserversink-viewer-added")
                    .field("id", &id)
                    .field("remote-address", &address)
                    .field("user-agent", &agent)
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        Ok(created)
    }

    fn delete_viewer(&self, resource: &str) -> Result<(), Rejection> {
        if self.end_viewer(resource, "the viewer sent DELETE") {
            Ok(())
        } else {
            Err(Rejection::new(404, format!("no viewer {resource:?} here (it ended, or never was)")))
        }
    }

    fn patch_viewer(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        let (webrtcbin, etag, mids, ufrag) = {
            let state = self.state.lock().unwrap();
            let viewer = state
                .viewers
                .get(resource)
                .ok_or_else(|| Rejection::new(404, format!("no viewer {resource:?} here")))?;
            (viewer.webrtcbin.clone(), viewer.etag.clone(), viewer.mids.clone(), viewer.remote_ufrag.clone())
        };
        viewer::trickle(&webrtcbin, &etag, &mids, ufrag.as_deref(), sdpfrag, if_match)
    }

    /// Ends a viewer (its frames stop, its pipeline goes): whether it was there.
    pub(super) fn end_viewer(&self, id: &str, reason: &str) -> bool {
        let viewer = {
            let mut state = self.state.lock().unwrap();
            let viewer = state.viewers.remove(id);
            state.viewers_ended += u64::from(viewer.is_some());
            viewer
        };
        let Some(viewer) = viewer else { return false };
        for track in self.tracks.lock().unwrap().iter() {
            track.state.lock().unwrap().feeds.retain(|f| f.viewer != id);
        }
        gst::info!(
            CAT,
            imp = self,
            "Viewer {id} ended: {reason} ({} frames sent, {} skipped, {} key frame requests)",
            viewer.counters.frames_sent.load(Ordering::Relaxed),
            viewer.counters.frames_skipped.load(Ordering::Relaxed),
            viewer.key_requests.load(Ordering::Relaxed)
        );
        // Never from a thread of the viewer's own pipeline: stopping it would wait for itself.
        RUNTIME.spawn_blocking(move || viewer::stop(viewer));
        self.obj().emit_by_name::<()>("viewer-removed", &[&id, &reason]);
        let _ = self.obj().post_message(
            gst::message::Element::builder(
                gst::Structure::builder("whepserversink-viewer-removed")
                    .field("id", id)
                    .field("reason", reason)
                    .build(),
            )
            .src(&*self.obj())
            .build(),
        );
        true
    }

    /// A viewer is connected: each of its feeds joins its track, starting with the track's
    /// current group of pictures (or the next key frame, asked for).
    pub(super) fn start_feeds(&self, id: &str) {
        let (feeds, counters) = {
            let mut state = self.state.lock().unwrap();
            let Some(viewer) = state.viewers.get_mut(id) else { return };
            (std::mem::take(&mut viewer.pending_feeds), viewer.counters.clone())
        };
        for (track, appsrc) in feeds {
            let ask = {
                let mut state = track.state.lock().unwrap();
                let replay = state.cache.as_ref().map(|c| c.replay()).unwrap_or_default();
                for buffer in replay {
                    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                    counters.bytes_sent.fetch_add(buffer.size() as u64, Ordering::Relaxed);
                    let _ = appsrc.push_buffer(buffer.clone());
                }
                let needs_key = track.video && replay.is_empty();
                let counters = counters.clone();
                state.feeds.push(Feed { viewer: id.to_owned(), appsrc, gate: Gate::new(needs_key), counters });
                needs_key
            };
            gst::debug!(CAT, imp = self, "Viewer {id} joins {} (key frame asked: {ask})", track.pad_name);
            if ask {
                self.request_key_unit(&track);
            }
        }
    }

    /// Asks upstream for a key frame on `track` (an encoder makes one; whipcastsrc asks its
    /// publisher), at most once per interval.
    pub(super) fn request_key_unit(&self, track: &Track) {
        let now = self.epoch.elapsed();
        if !track.state.lock().unwrap().key_requests.ask(now) {
            return;
        }
        let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
        if let Some(pad) = track.appsink.static_pad("sink") {
            let sent = pad.push_event(event);
            gst::debug!(CAT, imp = self, "Key frame asked upstream of {} (taken: {sent})", track.pad_name);
        }
    }

    /// One frame into `track`: kept for viewers to come, sent to each viewer that can take it.
    fn distribute(&self, track: &Track, sample: &gst::Sample) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(buffer) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
        // Timestamps as running time: each viewer's pipeline runs on this pipeline's clock and
        // base time.
        let segment = sample.segment().and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
        let mut out = buffer.copy();
        if let Some(segment) = &segment {
            let out = out.make_mut();
            let pts = buffer.pts().and_then(|t| segment.to_running_time(t));
            gst::log!(CAT, imp = self, "{}: pts {:?} in {:?} -> {:?}", track.pad_name, buffer.pts(), segment, pts);
            let dts = buffer.dts().and_then(|t| segment.to_running_time(t));
            out.set_pts(pts);
            out.set_dts(dts);
        }
        let key = !track.video || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let max_backlog = u64::from(self.settings.lock().unwrap().max_backlog);
        let mut ask = false;
        {
            let mut state = track.state.lock().unwrap();
            if let Some(caps) = sample.caps()
                && state.caps.as_ref().is_none_or(|c| c.as_ref() != caps)
            {
                let caps = caps.to_owned();
                for feed in &state.feeds {
                    feed.appsrc.set_caps(Some(&caps));
                }
                gst::info!(CAT, imp = self, "{} carries {caps}", track.pad_name);
                state.caps = Some(caps);
            }
            if track.video {
                state.cache.get_or_insert_with(|| GopCache::new(DEFAULT_GOP_LIMITS)).push(key, out.size(), &out);
            }
            for feed in &mut state.feeds {
                let full = feed.appsrc.current_level_buffers() >= max_backlog;
                match feed.gate.offer(key, full) {
                    Verdict::Send => {
                        feed.counters.frames_sent.fetch_add(u64::from(track.video), Ordering::Relaxed);
                        feed.counters.bytes_sent.fetch_add(out.size() as u64, Ordering::Relaxed);
                        let _ = feed.appsrc.push_buffer(out.clone());
                    }
                    Verdict::Skip => {
                        feed.counters.frames_skipped.fetch_add(u64::from(track.video), Ordering::Relaxed);
                    }
                    Verdict::SkipAndAskKey => {
                        feed.counters.frames_skipped.fetch_add(u64::from(track.video), Ordering::Relaxed);
                        gst::info!(CAT, imp = self, "Viewer {} fell behind on {}", feed.viewer, track.pad_name);
                        ask = true;
                    }
                }
            }
        }
        if ask {
            self.request_key_unit(track);
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let mut viewers: Vec<&Viewer> = state.viewers.values().collect();
        viewers.sort_by_key(|v| v.started);
        let list = gst::Array::new(viewers.iter().map(|v| {
            gst::Structure::builder("viewer")
                .field("id", &v.id)
                .field("remote-address", v.peer.address.to_string())
                .field("user-agent", v.peer.user_agent.clone().unwrap_or_default())
                .field("duration", v.started.elapsed().as_secs_f64())
                .field("connection-state", v.connection_state())
                .field("frames-sent", v.counters.frames_sent.load(Ordering::Relaxed))
                .field("frames-skipped", v.counters.frames_skipped.load(Ordering::Relaxed))
                .field("bytes-sent", v.counters.bytes_sent.load(Ordering::Relaxed))
                .field("keyframe-requests", v.key_requests.load(Ordering::Relaxed))
                .build()
                .to_send_value()
        }));
        gst::Structure::builder("application/x-whepserversink-stats")
            .field("viewers-started", state.viewers_started)
            .field("viewers-ended", state.viewers_ended)
            .field("viewers", list)
            .build()
    }

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

    /// Ends viewers whose connection failed or closed, or who went silent (checked once a second).
    pub(super) fn watch(&self) {
        let failed: Vec<(String, String)> = {
            let state = self.state.lock().unwrap();
            let now = Instant::now();
            state.viewers.values().filter_map(|v| v.failure(now).map(|why| (v.id.clone(), why))).collect()
        };
        for (id, why) in failed {
            self.end_viewer(&id, &why);
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

impl GstObjectImpl for WhepServerSink {}

impl BinImpl for WhepServerSink {}

impl ElementImpl for WhepServerSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "WHEP server sink",
                "Sink/Network/WebRTC",
                "A WHEP endpoint: viewers (browsers, whepsrc) POST an offer to http(s)://<address>:<port>/whep/<stream> and are sent what flows into video_%u and audio_%u (encoded H.264, H.265, VP8, VP9, AV1, Opus), without re-encoding",
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
        let mut tracks = self.tracks.lock().unwrap();
        let prefix = if video { "video" } else { "audio" };
        let name = match name {
            Some(name) if tracks.iter().any(|t| t.pad_name == name) => return None,
            Some(name) => name.to_owned(),
            None => (0..).map(|n| format!("{prefix}_{n}")).find(|n| tracks.iter().all(|t| &t.pad_name != n))?,
        };
        let appsink = gst_app::AppSink::builder().name(format!("{name}-sink")).sync(false).async_(false).build();
        appsink.set_property("enable-last-sample", false);
        let target = appsink.static_pad("sink")?;
        self.obj().add(&appsink).ok()?;
        let ghost = gst::GhostPad::builder_from_template(template).name(name.as_str()).build();
        ghost.set_target(Some(&target)).ok()?;
        let track = Arc::new(Track {
            pad_name: name.clone(),
            video,
            appsink: appsink.clone(),
            ghost: ghost.clone(),
            state: Mutex::default(),
        });
        let element = self.obj().downgrade();
        let weak_track = Arc::downgrade(&track);
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
        let _ = ghost.set_active(true);
        self.obj().add_pad(&ghost).ok()?;
        tracks.push(track);
        Some(ghost.upcast())
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
