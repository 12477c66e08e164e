//! The element: sessions coming and going (the decisions are `session.rs`'s), the HTTP server's
//! handle on the element, signals, messages, stats and state changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use crate::endpoint::{self, gone};
use crate::sdp::{self, MediaPlan, OfferError, Sdp};
use crate::server::{self, Created, Endpoint, Patched, Peer, RUNTIME, Registration};
use crate::session::{self, Ending, PatchAction, Sessions};
use crate::whip::{self, Protocol, Rejection, StreamAuth};

use super::negotiation::Pending;
use super::outputs::{OutputPad, caps_from_sdp, session_pads, stream_codecs};
use super::settings::Settings;

/// How often a draining session is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The longest a session's end waits for webrtcbin to be done with the offer.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// A stopped session's elements are looked at again this long after (see `stop_stragglers`).
const STRAGGLERS_AFTER: Duration = Duration::from_secs(1);

pub(super) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("whipserversrc", gst::DebugColorFlags::empty(), Some("WHIP server source"))
});

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
        self.with(|imp| match imp.settings.lock().unwrap().endpoint.required_token() {
            Some(token) => StreamAuth::Token(token),
            None => StreamAuth::Open,
        })
        .unwrap_or(StreamAuth::Unknown)
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

/// Per simulcast layer, in rid order: `layer, rid=0, packets-received=..., bytes-received=...,
/// packets-lost=...`.
fn layer_stats(layers: &[(String, u64, u64, i64)]) -> gst::Array {
    let mut layers = layers.to_vec();
    layers.sort();
    gst::Array::new(layers.into_iter().map(|(rid, packets, bytes, lost)| {
        gst::Structure::builder("layer")
            .field("rid", rid)
            .field("packets-received", packets)
            .field("bytes-received", bytes)
            .field("packets-lost", lost)
            .build()
            .to_send_value()
    }))
}

/// Stops what still runs in a session's bin once it was stopped and removed: webrtcbin 1.22,
/// stopped while its own thread still applies an offer, creates the ICE transports after and
/// starts them. Found running (about 1 session in 300 torn down mid-negotiation on a busy
/// machine), they held their threads and sockets, and so the whole webrtcbin, for good.
fn stop_stragglers(bin: &gst::Bin) {
    let running: Vec<gst::Element> = bin
        .iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.current_state() != gst::State::Null || e.pending_state() != gst::State::VoidPending)
        .collect();
    for element in running {
        gst::info!(
            CAT,
            obj = bin,
            "{} still {:?} after its session stopped: stopping it",
            element.name(),
            element.current_state()
        );
        let _ = element.set_state(gst::State::Null);
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

    /// Ends the session `id` if it is still the current one (from any thread).
    pub(super) fn end_session(&self, id: &str, reason: &str) {
        let policy = self.settings.lock().unwrap().policy();
        let ending = self.state.lock().unwrap().sessions.end(&policy, id, reason);
        if let Some(ending) = ending {
            self.carry_out(ending);
        }
    }

    /// Stops what the session logic ended: the session's webrtcbin (if built), and the stream
    /// where it says so. From any thread.
    pub(super) fn carry_out(&self, ending: Ending) {
        let session = {
            let mut state = self.state.lock().unwrap();
            if state.session.as_ref().is_some_and(|s| s.id == ending.id) { state.session.take() } else { None }
        };
        let element = self.obj().downgrade();
        // Tearing down webrtcbin from one of its own threads would deadlock.
        RUNTIME.spawn_blocking(move || {
            let Some(element) = element.upgrade() else {
                if let Some(session) = session {
                    let _ = session.bin.set_state(gst::State::Null);
                }
                return;
            };
            match session {
                Some(session) if ending.drain => element.imp().drain_then_finish(session, ending),
                Some(session) => element.imp().finish_session(session, &ending),
                // Its webrtcbin is still being made: start_session stops it once made.
                None if ending.end_stream => element.imp().end_outputs(),
                None => {}
            }
        });
    }

    /// Lets what the session received (in webrtcbin's jitter buffer, in its depayloaders) reach
    /// the pads, then stops it; a new session or the element's end cuts this short.
    fn drain_then_finish(&self, session: Session, ending: Ending) {
        let latency = Duration::from_millis(self.settings.lock().unwrap().latency.into());
        let (id, started, last_media_ms) = (session.id.clone(), session.started, session.last_media_ms.clone());
        // One drains at a time: a session still draining (two DELETEs in a row) stops now; left
        // in the slot it would be overwritten and run on, owned by nobody.
        let earlier = self.state.lock().unwrap().draining.replace((session, ending));
        if let Some((earlier, ending)) = earlier {
            self.finish_session(earlier, &ending);
        }
        let begun = Instant::now();
        loop {
            let last_media = started + Duration::from_millis(last_media_ms.load(Ordering::Relaxed));
            if session::drained(begun.elapsed(), last_media.elapsed(), latency) {
                break;
            }
            std::thread::sleep(DRAIN_POLL);
        }
        let drained = self.state.lock().unwrap().draining.take_if(|(s, _)| s.id == id);
        if let Some((session, ending)) = drained {
            gst::debug!(CAT, imp = self, "Session {id} drained in {:?}", begun.elapsed());
            self.finish_session(session, &ending);
        }
    }

    /// A draining session, if any, stops now.
    fn cut_drain_short(&self) {
        let draining = self.state.lock().unwrap().draining.take();
        if let Some((session, ending)) = draining {
            self.finish_session(session, &ending);
        }
    }

    /// EOS on every pad: the stream is over.
    pub(super) fn end_outputs(&self) {
        let outputs: Vec<gst_app::AppSrc> =
            self.state.lock().unwrap().outputs.values().map(|o| o.appsrc.clone()).collect();
        for appsrc in outputs {
            let _ = appsrc.end_of_stream();
        }
    }

    /// Stops a session that is no longer current; the stream ends with it where `ending` says so.
    pub(super) fn finish_session(&self, session: Session, ending: &Ending) {
        let reason = ending.reason.as_str();
        gst::info!(CAT, imp = self, "Session {} ended: {reason}", session.id);
        // webrtcbin 1.22 stopped while it applies an offer and its answer may leave parts of it
        // running or held (ICE transports, the agent's sockets): let it get there first.
        let settling = Instant::now();
        while session.negotiating.load(Ordering::Relaxed) && settling.elapsed() < SETTLE_LIMIT {
            std::thread::sleep(DRAIN_POLL);
        }
        let _ = session.bin.set_state(gst::State::Null);
        let _ = self.obj().remove(&session.bin);
        // Weak: held here, the bin would keep webrtcbin, and its ICE ports, for that long.
        let bin = session.bin.downgrade();
        RUNTIME.spawn(async move {
            tokio::time::sleep(STRAGGLERS_AFTER).await;
            if let Some(bin) = bin.upgrade() {
                let _ = tokio::task::spawn_blocking(move || stop_stragglers(&bin)).await;
            }
        });
        // GstBin drops the flag when its last source child goes.
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
        for out in self.state.lock().unwrap().outputs.values() {
            *out.upstream.lock().unwrap() = None;
        }
        if ending.end_stream {
            self.end_outputs();
        }
        let remote = session.peer.address.to_string();
        let user_agent = session.peer.user_agent.clone().unwrap_or_default();
        let obj = self.obj();
        obj.emit_by_name::<()>("session-ended", &[&session.id, &remote, &user_agent, &reason]);
        let s = gst::Structure::builder("whipserversrc-session-ended")
            .field("id", &session.id)
            .field("remote-address", &remote)
            .field("user-agent", &user_agent)
            .field("reason", reason)
            .build();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }

    /// Ends the pads of the current session's streams that stayed silent past
    /// `silent-stream-timeout` while others flowed (a browser's audio transceiver without a
    /// track): a muxer that waits for every stream (mp4mux, matroskamux) would hold the others
    /// until the stream ends, and write nothing meanwhile.
    fn give_up_silent_streams(&self) {
        let timeout = self.settings.lock().unwrap().silent_stream_timeout();
        let state = self.state.lock().unwrap();
        let Some(session) = state.session.as_ref() else { return };
        let first = session.first_media_ms.load(Ordering::Relaxed);
        let media_for =
            (first != u64::MAX).then(|| session.started.elapsed().saturating_sub(Duration::from_millis(first)));
        let mut silent = session.silent.lock().unwrap();
        silent.retain(|(out, _)| !out.fed.load(Ordering::Relaxed));
        if !session::silent_stream_given_up(media_for, timeout) {
            return;
        }
        for (out, caps_known) in silent.drain(..) {
            let name = out.ghost.name();
            if caps_known {
                gst::info!(CAT, imp = self, "{name}: negotiated, nothing received: ended (EOS)");
                out.given_up.store(true, Ordering::Relaxed);
                let _ = out.appsrc.end_of_stream();
            } else {
                // Without caps a muxer writes a broken track (mp4mux): better it waits.
                gst::warning!(CAT, imp = self, "{name}: negotiated, nothing received: a muxer waits for it");
            }
        }
    }

    /// Once a second: the session logic's timeouts, and the current session's stats.
    pub(super) fn watch(&self) {
        let policy = self.settings.lock().unwrap().policy();
        let (ending, current) = {
            let mut state = self.state.lock().unwrap();
            let state = &mut *state;
            if let Some(s) = state.session.as_ref() {
                let since_epoch = |ms: u64| s.started.duration_since(self.epoch) + Duration::from_millis(ms);
                match s.received_ms.load(Ordering::Relaxed) {
                    u64::MAX => {}
                    received => state.sessions.received(&s.id, since_epoch(received)),
                }
                if s.first_media_ms.load(Ordering::Relaxed) != u64::MAX {
                    state.sessions.media(&s.id, since_epoch(s.last_media_ms.load(Ordering::Relaxed)));
                }
            }
            let ending = state.sessions.handle_timeout(&policy, self.epoch.elapsed());
            (ending, state.session.as_ref().map(|s| (s.webrtcbin.clone(), s.stats.clone(), s.layer_ssrcs.clone())))
        };
        if let Some(ending) = ending {
            self.carry_out(ending);
            return;
        }
        self.give_up_silent_streams();
        let Some((webrtcbin, stats, layer_ssrcs)) = current else { return };
        let layer_ssrcs = layer_ssrcs.lock().unwrap().clone();
        let promise = gst::Promise::new();
        webrtcbin.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        if promise.wait() != gst::PromiseResult::Replied {
            return;
        }
        let Some(reply) = promise.get_reply() else { return };
        let mut s = stats.lock().unwrap();
        let mut total = SessionStats { last_bytes: s.last_bytes, ..Default::default() };
        for (_, value) in reply.iter() {
            let Ok(entry) = value.get::<gst::Structure>() else { continue };
            if entry.get::<gst_webrtc::WebRTCStatsType>("type") != Ok(gst_webrtc::WebRTCStatsType::InboundRtp) {
                continue;
            }
            total.packets_received += entry.get::<u64>("packets-received").unwrap_or(0);
            total.bytes_received += entry.get::<u64>("bytes-received").unwrap_or(0);
            total.packets_lost += entry.get::<i64>("packets-lost").unwrap_or(0);
            total.nack_count += u64::from(entry.get::<u32>("nack-count").unwrap_or(0));
            total.pli_count += u64::from(entry.get::<u32>("pli-count").unwrap_or(0));
            total.fir_count += u64::from(entry.get::<u32>("fir-count").unwrap_or(0));
            total.jitter = total.jitter.max(entry.get::<f64>("jitter").unwrap_or(0.0));
            if let Some(rid) = entry.get::<u32>("ssrc").ok().and_then(|ssrc| layer_ssrcs.get(&ssrc)) {
                total.layers.push((
                    rid.clone(),
                    entry.get::<u64>("packets-received").unwrap_or(0),
                    entry.get::<u64>("bytes-received").unwrap_or(0),
                    entry.get::<i64>("packets-lost").unwrap_or(0),
                ));
            }
        }
        let now = Instant::now();
        if let Some((then, bytes)) = total.last_bytes {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                total.bitrate = (total.bytes_received.saturating_sub(bytes) as f64 * 8.0 / seconds) as u64;
            }
        }
        total.last_bytes = Some((now, total.bytes_received));
        *s = total;
    }

    pub(super) fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let (started, ended) = state.sessions.counts();
        let mut builder = gst::Structure::builder("application/x-whipserversrc-stats")
            .field("sessions-started", started)
            .field("sessions-ended", ended);
        if let Some(session) = &state.session {
            let s = session.stats.lock().unwrap();
            let current = gst::Structure::builder("session")
                .field("id", &session.id)
                .field("remote-address", session.peer.address.to_string())
                .field("user-agent", session.peer.user_agent.clone().unwrap_or_default())
                .field("duration", session.started.elapsed().as_secs_f64())
                .field("bitrate", s.bitrate)
                .field("packets-received", s.packets_received)
                .field("bytes-received", s.bytes_received)
                .field("packets-lost", s.packets_lost)
                .field("nack-count", s.nack_count)
                .field("pli-count", s.pli_count)
                .field("fir-count", s.fir_count)
                .field("jitter", s.jitter)
                .field("keyframes", session.keyframes.load(Ordering::Relaxed))
                .field("keyframe-requests", session.keyframe_requests.load(Ordering::Relaxed))
                .field("layers", layer_stats(&s.layers))
                .field("receiving", gst::Array::new(session.receiving.lock().unwrap().iter()))
                .build();
            builder = builder.field("session", current);
        }
        builder.build()
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
                "A WHIP (RFC 9725) endpoint: publishers such as OBS Studio or browsers POST to http(s)://<address>:<port>/whip/<stream>; their media leaves on video_%u and audio_%u",
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
