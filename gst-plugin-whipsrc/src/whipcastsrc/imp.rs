//! The element: sessions starting (the decisions are `session.rs`'s), the HTTP server's handle on
//! the element, signals, messages, properties and state changes. How sessions end is
//! `ending.rs`'s, the once-a-second timeouts and stats `watch.rs`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use crate::endpoint::{self, gone};
use crate::sdp::{self, MediaPlan, OfferError, Sdp};
use crate::server::{self, Created, Endpoint, Patched, Peer, Registration};
use crate::session::{Ending, PatchAction, Sessions};
use crate::whip::{self, Protocol, Rejection, StreamAuth};

use super::negotiation::Pending;
use super::pads::{OutputPad, caps_from_sdp, session_pads, stream_codecs};
use super::settings::Settings;

pub(super) static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("whipcastsrc", gst::DebugColorFlags::empty(), Some("WHIP server source")));

#[derive(Debug, Default, Clone)]
pub(super) struct SessionStats {
    pub(super) packets_received: u64,
    pub(super) bytes_received: u64,
    pub(super) packets_lost: i64,
    pub(super) nack_count: u64,
    pub(super) pli_count: u64,
    pub(super) fir_count: u64,
    pub(super) bitrate: u64,
    /// The largest interarrival jitter of the session's RTP streams (s).
    pub(super) jitter: f64,
    pub(super) last_bytes: Option<(Instant, u64)>,
    /// Simulcast layers: rid, packets received, bytes received, packets lost.
    pub(super) layers: Vec<(String, u64, u64, i64)>,
}

pub(super) struct Session {
    pub(super) id: String,
    pub(super) bin: gst::Bin,
    pub(super) webrtcbin: gst::Element,
    pub(super) peer: Peer,
    /// The offer as webrtcbin took it, for ICE restarts.
    pub(super) offer: Sdp,
    /// The answer the publisher got (our candidates), once sent.
    pub(super) answer: Arc<Mutex<Option<Sdp>>>,
    pub(super) media: Vec<MediaPlan>,
    /// Held by the PATCH being handled: an ICE restart changes the ETag and the credentials the
    /// next PATCH is checked against.
    pub(super) patching: Arc<Mutex<()>>,
    pub(super) started: Instant,
    /// Milliseconds since `started` of the last media buffer out of the session's chains.
    pub(super) last_media_ms: Arc<AtomicU64>,
    /// Milliseconds since `started` of the last RTP packet received (`u64::MAX`: none yet): the
    /// publisher is alive even while depayloaders drop damaged frames until a key frame.
    pub(super) received_ms: Arc<AtomicU64>,
    /// Milliseconds since `started` of the first media buffer (`u64::MAX`: none yet).
    pub(super) first_media_ms: Arc<AtomicU64>,
    /// The pads of this session that have had no data yet, and whether their caps are known
    /// (from the SDP): what may be given up for silence.
    pub(super) silent: Mutex<Vec<(OutputPad, bool)>>,
    pub(super) keyframes: Arc<AtomicU64>,
    pub(super) keyframe_requests: Arc<AtomicU64>,
    /// webrtcbin is working on the offer: see `finish_session`.
    pub(super) negotiating: Arc<AtomicBool>,
    pub(super) stats: Arc<Mutex<SessionStats>>,
    /// The rid of each simulcast stream's SSRC.
    pub(super) layer_ssrcs: Arc<Mutex<HashMap<u32, String>>>,
    /// The pads whose RTP is arriving, frames or not yet (a stream starting mid-GOP sends its
    /// first frame at its next key frame).
    pub(super) receiving: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) registration: Option<Registration>,
    /// Who publishes, decided (session.rs).
    pub(super) sessions: Sessions,
    /// The GStreamer side of the current session, once built.
    pub(super) session: Option<Session>,
    /// A session that ended with a DELETE, still letting out what it received (session::drained).
    pub(super) draining: Option<(Session, Ending)>,
    pub(super) outputs: HashMap<String, OutputPad>,
    pub(super) watchdog: Option<tokio::task::JoinHandle<()>>,
}

pub struct WhipServerSrc {
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    /// Held while an output pad is made, so that two callers make one pad; `state` is not held
    /// then, as the pad-added handlers may call back into the element.
    pub(super) making_outputs: Mutex<()>,
    /// Time zero of the session logic's clock.
    pub(super) epoch: Instant,
}

#[glib::object_subclass]
impl ObjectSubclass for WhipServerSrc {
    const NAME: &'static str = "WhipcastWhipServerSrc";
    type Type = super::WhipServerSrc;
    type ParentType = gst::Bin;

    fn new() -> Self {
        Self {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            making_outputs: Mutex::new(()),
            epoch: Instant::now(),
        }
    }
}

/// The server's handle on this element.
pub(super) struct Handle(glib::WeakRef<super::WhipServerSrc>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&WhipServerSrc) -> T) -> Option<T> {
        self.0.upgrade().map(|e| f(e.imp()))
    }
}

impl Endpoint for Handle {
    fn auth(&self) -> StreamAuth {
        self.with(|imp| imp.settings.lock().unwrap().endpoint.auth()).unwrap_or(StreamAuth::Unknown)
    }

    fn sessions(&self) -> usize {
        self.with(|imp| usize::from(imp.state.lock().unwrap().sessions.current_id().is_some())).unwrap_or(0)
    }

    fn max_sessions(&self) -> u32 {
        self.with(|imp| imp.settings.lock().unwrap().max_sessions).unwrap_or(0)
    }

    fn posts_per_address(&self) -> u32 {
        self.with(|imp| imp.settings.lock().unwrap().max_posts_per_address).unwrap_or(0)
    }

    fn replaces(&self) -> bool {
        self.with(|imp| imp.settings.lock().unwrap().replace_publisher).unwrap_or(false)
    }

    fn publish_page(&self) -> bool {
        self.with(|imp| imp.settings.lock().unwrap().publish_page).unwrap_or(false)
    }

    fn create(&self, offer: String, peer: Peer) -> oneshot::Receiver<Result<Created, Rejection>> {
        let (tx, rx) = oneshot::channel();
        match self.0.upgrade() {
            Some(element) => element.imp().start_session(offer, peer, tx),
            None => {
                let _ = tx.send(Err(gone()));
            }
        }
        rx
    }

    fn delete(&self, resource: &str) -> Result<(), Rejection> {
        self.with(|imp| imp.delete_session(resource)).unwrap_or_else(|| Err(gone()))
    }

    fn patch(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        self.with(|imp| imp.patch_session(resource, sdpfrag, if_match)).unwrap_or_else(|| Err(gone()))
    }
}

impl WhipServerSrc {
    pub(super) fn start_session(&self, offer: String, peer: Peer, reply: oneshot::Sender<Result<Created, Rejection>>) {
        let settings = self.settings.lock().unwrap().clone();
        let prepared = match sdp::prepare_offer_within(&offer, &settings.preferences(), &settings.offer_limits()) {
            Ok(prepared) => prepared,
            Err(e) => {
                let status = if matches!(e, OfferError::Malformed(_)) { 400 } else { 422 };
                gst::info!(CAT, imp = self, "Refusing offer from {}: {e}", peer.address);
                let _ = reply.send(Err(Rejection::new(status, e.to_string())));
                return;
            }
        };
        let sdp_message = match gst_sdp::SDPMessage::parse_buffer(prepared.sdp.to_string().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                let _ = reply.send(Err(Rejection::new(400, "SDP offer cannot be parsed")));
                return;
            }
        };

        let id = whip::random_id();
        let etag = whip::new_etag();
        let remote_ufrag = prepared.sdp.media[0].attribute("ice-ufrag").map(str::to_owned);
        // Current from now on: a POST arriving while this one's webrtcbin is made replaces it.
        let (replaced, draining) = {
            let mut state = self.state.lock().unwrap();
            let now = self.epoch.elapsed();
            match state.sessions.admit(&settings.policy(), &id, &etag, remote_ufrag.as_deref(), now) {
                Ok(replaced) => (
                    replaced.map(|ending| (state.session.take_if(|s| s.id == ending.id), ending)),
                    // The new publisher's media must not mix with the old one's tail: cut it short.
                    state.draining.take(),
                ),
                Err(rejection) => {
                    let _ = reply.send(Err(rejection));
                    return;
                }
            }
        };
        if let Some((old, ending)) = draining {
            self.finish_session(old, &ending);
        }
        if let Some((Some(old), ending)) = replaced {
            self.finish_session(old, &ending);
        }

        let sent_answer = Arc::new(Mutex::new(None));
        let offered = prepared.sdp.clone();
        let offer = (prepared.sdp, sent_answer.clone());
        let session = match self.build_session(&id, &settings, prepared.media, offer, peer) {
            Ok(session) => session,
            Err(e) => {
                gst::error!(CAT, imp = self, "Cannot start a session: {e}");
                self.state.lock().unwrap().sessions.abandon(&id, &e);
                let _ = reply.send(Err(Rejection::new(500, e)));
                return;
            }
        };
        // Started before anyone else can see it: a concurrent POST that replaces it then stops
        // a running bin. Started later, it could restart a bin already stopped and being
        // removed, which would run on, owned by nobody (its ICE threads and sockets held).
        if session.bin.sync_state_with_parent().is_err() {
            gst::warning!(CAT, imp = self, "Session bin did not follow the element's state");
        }
        let (webrtcbin, negotiating) = (session.webrtcbin.clone(), session.negotiating.clone());
        let too_late = {
            let mut state = self.state.lock().unwrap();
            if state.sessions.is_current(&id) {
                state.session = Some(session);
                None
            } else {
                Some(session)
            }
        };
        if let Some(session) = too_late {
            // Replaced (or the stream ended) while its webrtcbin was being made.
            let rejection = self.no_longer_current(&id).unwrap_or_else(|| Rejection::new(409, "replaced"));
            let ending = Ending { id: id.clone(), reason: rejection.reason.clone(), end_stream: false, drain: false };
            let _ = reply.send(Err(rejection));
            self.finish_session(session, &ending);
            return;
        }
        let pending = Pending { id, etag, settings, offer: offered, sdp_message, sent_answer, negotiating };
        self.negotiate(pending, webrtcbin, reply);
    }

    /// Session `id` was answered: its time without media counts from now.
    pub(super) fn answered(&self, id: &str) {
        let now = self.epoch.elapsed();
        self.state.lock().unwrap().sessions.answered(id, now);
    }

    pub(super) fn count_keyframe_request(&self) {
        if let Some(session) = &self.state.lock().unwrap().session {
            session.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Emitted before the answer leaves, so before any media: a handler can prepare for the
    /// pads named in `streams` (e.g. `video_0` = `AV1`); the message's `layers` says which
    /// simulcast layer each pad fed by simulcast carries (the signal keeps its four arguments).
    pub(super) fn announce_session_started(&self, id: &str) {
        let (choice, analysis, output) = {
            let settings = self.settings.lock().unwrap();
            (settings.layer_choice(), settings.analysis_min_height > 0, settings.output)
        };
        let (remote, user_agent, media) = {
            let state = self.state.lock().unwrap();
            match state.session.as_ref().filter(|s| s.id == id) {
                Some(s) => (s.peer.address.to_string(), s.peer.user_agent.clone().unwrap_or_default(), s.media.clone()),
                None => return,
            }
        };
        let pads = session_pads(&media, choice, analysis);
        let (streams, layers) = stream_codecs(&pads);
        gst::info!(CAT, imp = self, "Session {id} started: {remote} ({user_agent}), {streams}, {layers}");
        // Every pad the session will feed exists from now on, data or not: downstream links it
        // (gst-launch's delayed links) and gets its EOS when the stream ends, also for a stream
        // the publisher negotiated and never sent.
        let mut silent = Vec::new();
        for pad in &pads {
            match self.output_pad(&pad.name, pad.kind) {
                Ok(out) => {
                    let caps = caps_from_sdp(pad.codec, output);
                    if let Some(caps) = &caps {
                        out.appsrc.set_caps(Some(caps));
                    }
                    out.fed.store(false, Ordering::Relaxed);
                    silent.push((out, caps.is_some()));
                }
                Err(e) => gst::warning!(CAT, imp = self, "Cannot add pad {}: {e}", pad.name),
            }
        }
        if let Some(s) = self.state.lock().unwrap().session.as_ref().filter(|s| s.id == id) {
            *s.silent.lock().unwrap() = silent;
        }
        let obj = self.obj();
        obj.emit_by_name::<()>("session-started", &[&id, &remote, &user_agent, &streams]);
        let s = gst::Structure::builder("whipserversrc-session-started")
            .field("id", id)
            .field("remote-address", &remote)
            .field("user-agent", &user_agent)
            .field("streams", &streams)
            .field("layers", &layers)
            .build();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    pub(super) fn delete_session(&self, resource: &str) -> Result<(), Rejection> {
        let policy = self.settings.lock().unwrap().policy();
        let ending = self.state.lock().unwrap().sessions.delete(&policy, resource)?;
        self.carry_out(ending);
        Ok(())
    }

    pub(super) fn patch_session(
        &self,
        resource: &str,
        sdpfrag: &str,
        if_match: Option<&str>,
    ) -> Result<Patched, Rejection> {
        let patching = {
            let state = self.state.lock().unwrap();
            let session = state.session.as_ref().filter(|s| s.id == resource);
            session.ok_or_else(|| state.sessions.not_found(resource))?.patching.clone()
        };
        let _one_at_a_time = patching.lock().unwrap();
        let frag = sdp::parse_sdpfrag(sdpfrag).map_err(|e| Rejection::new(400, e.to_string()))?;
        let (webrtcbin, media, action) = {
            let mut state = self.state.lock().unwrap();
            let state = &mut *state;
            let session = state
                .session
                .as_ref()
                .filter(|s| s.id == resource)
                .ok_or_else(|| state.sessions.not_found(resource))?;
            let action = state.sessions.patch(resource, frag.ice_ufrag.as_deref(), if_match)?;
            if action == PatchAction::Trickle {
                state.sessions.trickle(resource, frag.candidates.len())?;
            }
            (session.webrtcbin.clone(), session.media.clone(), action)
        };
        if action == PatchAction::Restart {
            return self.restart_ice(resource, &webrtcbin, &frag);
        }
        for (mid, candidate) in &frag.candidates {
            let mline =
                mid.as_deref().and_then(|mid| media.iter().position(|m| m.mid.as_deref() == Some(mid))).unwrap_or(0)
                    as u32;
            webrtcbin.emit_by_name::<()>("add-ice-candidate", &[&mline, &format!("candidate:{candidate}")]);
        }
        Ok(Patched::Trickle)
    }

    /// Why session `id`, not answered yet, will not be: a newer POST replaced it (409) or the
    /// stream ended (503). `None` while it is current.
    pub(super) fn no_longer_current(&self, id: &str) -> Option<Rejection> {
        let state = self.state.lock().unwrap();
        match (state.sessions.is_current(id), state.sessions.stream_ended()) {
            (true, _) => None,
            (false, true) => Some(Rejection::new(503, "the stream has ended")),
            (false, false) => Some(Rejection::new(409, "a newer publisher replaced this one before it was answered")),
        }
    }

    pub(super) fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let settings_error = |e: String| gst::error_msg!(gst::ResourceError::Settings, ["{e}"]);
        let endpoint = &settings.endpoint;
        endpoint.check().map_err(settings_error)?;
        let address = endpoint.socket_address().map_err(settings_error)?;
        let tls = endpoint.tls().map_err(settings_error)?;
        if endpoint.required_token().is_none() {
            gst::warning!(CAT, imp = self, "No token set: any publisher is accepted on /whip/{}", endpoint.stream);
        }
        if let Some(took) = endpoint::prepare_webrtc() {
            gst::debug!(CAT, imp = self, "WebRTC plugins loaded and DTLS certificate made in {took:?}");
        }
        let handle = Arc::new(Handle(self.obj().downgrade()));
        let registration = server::register(address, tls, Protocol::Whip, &endpoint.stream, handle)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["{e}"]))?;
        gst::info!(
            CAT,
            imp = self,
            "Serving WHIP on {}://{address}/whip/{}",
            if endpoint.tls_certificate.is_some() { "https" } else { "http" },
            endpoint.stream
        );
        let watchdog = endpoint::spawn_watch(self.obj().downgrade(), |e| e.imp().watch());
        let mut state = self.state.lock().unwrap();
        state.registration = Some(registration);
        state.watchdog = Some(watchdog);
        state.sessions.restart_stream();
        Ok(())
    }

    pub(super) fn stop(&self) {
        let (ending, session, outputs) = {
            let mut state = self.state.lock().unwrap();
            state.registration = None;
            if let Some(w) = state.watchdog.take() {
                w.abort();
            }
            let current = state.sessions.current_id().map(str::to_owned);
            let ending = current.and_then(|id| state.sessions.abandon(&id, "element stopped"));
            (ending, state.session.take(), std::mem::take(&mut state.outputs))
        };
        self.cut_drain_short();
        if let (Some(ending), Some(session)) = (ending, session) {
            self.finish_session(session, &ending);
        }
        let obj = self.obj();
        for (_, out) in outputs {
            let _ = out.appsrc.set_state(gst::State::Null);
            let _ = obj.remove_pad(&out.ghost);
            let _ = obj.remove(&out.appsrc);
        }
    }
}

impl ObjectImpl for WhipServerSrc {
    fn constructed(&self) {
        self.parent_constructed();
        // A source, pads or not: a pipeline sends EOS (gst-launch -e on Ctrl-C) to its sources,
        // and a bin counts as one only while it holds one.
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut specs = Settings::param_specs();
            specs.push(
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats").nick("Statistics").blurb("sessions-started, sessions-ended and, while a publisher is live, a session structure (id, remote-address, user-agent, duration, bitrate, packets-received, bytes-received, packets-lost, nack-count, pli-count, fir-count, jitter (s, the largest of its RTP streams), keyframes, keyframe-requests, layers: per simulcast layer its rid, packets-received, bytes-received, packets-lost; receiving: the pads whose RTP arrives, frames or not yet)").read_only().build(),
            );
            specs
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // id, remote address, user agent, streams (pad -> codec). The element message
                // whipserversrc-session-started also has `layers` (pad -> simulcast layer).
                glib::subclass::Signal::builder("session-started")
                    .param_types([
                        String::static_type(),
                        String::static_type(),
                        String::static_type(),
                        gst::Structure::static_type(),
                    ])
                    .build(),
                glib::subclass::Signal::builder("session-ended")
                    .param_types([
                        String::static_type(),
                        String::static_type(),
                        String::static_type(),
                        String::static_type(),
                    ])
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

impl GstObjectImpl for WhipServerSrc {}

impl BinImpl for WhipServerSrc {}

impl ElementImpl for WhipServerSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "WHIP server source",
                "Source/Network/WebRTC",
                "A WHIP (RFC 9725) endpoint: publishers such as OBS Studio or browsers POST to http(s)://<address>:<port>/whip/<stream>; their media leaves on video_%u and audio_%u. Also registered as whipserversrc, its first name (gst-plugins-rs has an element of that name too)",
                "whipcast developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            ["video_%u", "audio_%u", "analysis_%u"]
                .into_iter()
                .map(|name| {
                    gst::PadTemplate::new(
                        name,
                        gst::PadDirection::Src,
                        gst::PadPresence::Sometimes,
                        &gst::Caps::new_any(),
                    )
                    .unwrap()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }

    /// EOS sent to the element (gst-launch-1.0 -e on Ctrl-C, an application stopping): the live
    /// session ends and every pad's stream ends, so files are finalized and the pipeline's EOS
    /// comes (the session's internal sinks would never see one).
    fn send_event(&self, event: gst::Event) -> bool {
        if event.type_() == gst::EventType::Eos {
            self.cut_drain_short();
            let (ending, session) = {
                let mut state = self.state.lock().unwrap();
                (state.sessions.end_stream("EOS sent to the element"), state.session.take())
            };
            if let Some(session) = session {
                let ending = ending.unwrap_or_else(|| Ending {
                    id: session.id.clone(),
                    reason: "EOS sent to the element".into(),
                    end_stream: true,
                    drain: false,
                });
                self.finish_session(session, &ending);
            }
            if self.state.lock().unwrap().outputs.is_empty() {
                // No pad yet: the EOS reaches no sink, and a pipeline waiting for it (gst-launch
                // -e on Ctrl-C) would wait for ever.
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Failed,
                    ("Stopped before any publisher came: nothing was received")
                );
            }
        }
        self.parent_send_event(event)
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
        let result = result?;
        Ok(match transition {
            // A live source: nothing to preroll.
            gst::StateChange::ReadyToPaused | gst::StateChange::PlayingToPaused => gst::StateChangeSuccess::NoPreroll,
            _ => result,
        })
    }
}
