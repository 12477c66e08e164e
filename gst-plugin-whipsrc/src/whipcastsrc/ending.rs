//! How a session ends: the session logic's decision carried out (webrtcbin stopped, the
//! outputs drained then finished), streams that never sent anything given up, and what
//! webrtcbin 1.22 leaves running stopped.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, Session, WhipServerSrc};
use crate::server::RUNTIME;
use crate::session::{self, Ending};

/// How often a draining session is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// The longest a session's end waits for webrtcbin to be done with the offer.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// A stopped session's elements are looked at again this long after (see `stop_stragglers`).
const STRAGGLERS_AFTER: Duration = Duration::from_secs(1);

impl WhipServerSrc {
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
    pub(super) fn drain_then_finish(&self, session: Session, ending: Ending) {
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
    pub(super) fn cut_drain_short(&self) {
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
    pub(super) fn give_up_silent_streams(&self) {
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
}

/// Stops what still runs in a session's bin once it was stopped and removed: webrtcbin 1.22,
/// stopped while its own thread still applies an offer, creates the ICE transports after and
/// starts them. Found running (about 1 session in 300 torn down mid-negotiation on a busy
/// machine), they held their threads and sockets, and so the whole webrtcbin, for good.
pub(super) fn stop_stragglers(bin: &gst::Bin) {
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
