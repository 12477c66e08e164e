//! The WebRTC side of a session: its webrtcbin, set up for a WHIP publisher (bundle, NACK,
//! RTCP timing, no UPnP), the offer/answer exchange with our candidates in the answer, and ICE
//! restarts (which webrtcbin 1.22 does not do on its own).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use super::imp::{CAT, Session, SessionStats, WhipServerSrc};
use super::layers::{LAYER_CHOICE_WINDOW, LayeredSection};
use super::outputs::PadContext;
use super::settings::Settings;
use crate::endpoint::{as_dtls_server, promise_reply, wait_promise};
use crate::sdp::{self, IceCredentials, LocalCandidate, MediaPlan, Sdp};
use crate::server::{Created, Patched, Peer, RUNTIME};
use crate::simulcast::LayerSelector;
use crate::whip::{self, Rejection};

/// The answer goes out with the candidates gathered so far if gathering takes longer (counted
/// from the POST)...
pub(super) const GATHERING_TIMEOUT: Duration = Duration::from_secs(3);
/// ...but never sooner than this after webrtcbin has its local description, which gathering
/// needs (on a busy machine webrtcbin may take seconds to get there).
pub(super) const GATHERING_AFTER_LOCAL: Duration = Duration::from_millis(300);
/// With host candidates only, the answer goes out once no candidate came for this long.
pub(super) const HOST_CANDIDATES_SETTLE: Duration = Duration::from_millis(20);
/// Start bitrate hinted to browsers in the answer.
pub(super) const START_BITRATE_KBPS: u32 = 2500;
/// RTCP bandwidth of a receiver in bytes per second. Feedback (NACK, PLI) may go out early only
/// once per regular report interval (RFC 4585 3.5.2), which this bandwidth sets: about 100 ms, as
/// rtpsession computes it. A NACK then leaves well within the jitter buffer's latency; with the
/// defaults (0.5 s and more) most losses after the first in an interval were never repaired.
pub(super) const RTCP_RR_BANDWIDTH: i32 = 20_000;

/// A session admitted and built, waiting for its answer.
pub(super) struct Pending {
    pub id: String,
    pub etag: String,
    pub settings: Settings,
    /// The offer as webrtcbin takes it.
    pub offer: Sdp,
    pub sdp_message: gst_sdp::SDPMessage,
    /// The answer the publisher gets, once sent (for ICE restarts).
    pub sent_answer: Arc<Mutex<Option<Sdp>>>,
    /// Set while webrtcbin applies the offer and its answer (until both are set, or it fails).
    pub negotiating: Arc<AtomicBool>,
}

impl WhipServerSrc {
    /// Hands the offer to the session's webrtcbin and replies with its answer once our
    /// candidates are known (or 409/422/503 when it will not be answered).
    pub(super) fn negotiate(
        &self,
        pending: Pending,
        webrtcbin: gst::Element,
        reply: oneshot::Sender<Result<Created, Rejection>>,
    ) {
        let Pending { id, etag, settings, offer, sdp_message, sent_answer, negotiating } = pending;
        negotiating.store(true, Ordering::Relaxed);
        let posted = Instant::now();
        let reply = Arc::new(Mutex::new(Some(reply)));
        let candidates = Arc::new(Mutex::new(Vec::<LocalCandidate>::new()));

        let answer = {
            let (reply, candidates, settings, id, etag, offer) =
                (reply.clone(), candidates.clone(), settings.clone(), id.clone(), etag.clone(), offer.clone());
            let element = self.obj().downgrade();
            // Called by each trigger (candidates settled, gathering complete, the deadlines): the
            // first that can answer does; `None` when the session's webrtcbin is gone.
            move |webrtcbin: Option<&gst::Element>| {
                let Some(element) = element.upgrade() else { return };
                let reply = {
                    let mut slot = reply.lock().unwrap();
                    if slot.is_none() {
                        return;
                    }
                    if let Some(rejection) = element.imp().no_longer_current(&id) {
                        let _ = slot.take().unwrap().send(Err(rejection));
                        return;
                    }
                    let Some(webrtcbin) = webrtcbin else { return };
                    let local = webrtcbin.property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description");
                    if local.is_none() {
                        // Not yet: the deadline counted from the local description answers.
                        return;
                    }
                    (slot.take().unwrap(), webrtcbin)
                };
                let (reply, webrtcbin) = reply;
                let result = element.imp().compose_answer(webrtcbin, &candidates.lock().unwrap(), &settings, &offer);
                if let Ok(answer) = &result {
                    *sent_answer.lock().unwrap() = Sdp::parse(answer).ok();
                }
                let result = result.map(|answer| Created {
                    answer,
                    resource: id.clone(),
                    etag: etag.clone(),
                    links: settings.endpoint.ice_server_links(),
                });
                let answered = result.is_ok();
                if answered {
                    let composed = posted.elapsed();
                    element.imp().answered(&id);
                    element.imp().announce_session_started(&id);
                    gst::info!(
                        CAT,
                        obj = element,
                        "Session {id}: answer composed {composed:?} after the POST, sent after {:?} (session-started handlers)",
                        posted.elapsed()
                    );
                }
                if reply.send(result).is_err() && answered {
                    // The POST gave up waiting (504): the publisher never gets this answer.
                    let imp = element.imp();
                    let ending =
                        imp.state.lock().unwrap().sessions.abandon(&id, "the answer came after the POST timed out");
                    if let Some(ending) = ending {
                        imp.carry_out(ending);
                    }
                }
            }
        };

        {
            // Without STUN or TURN every candidate is a host candidate, known at once; libnice
            // still takes ~200 ms to call gathering complete. Answer when candidates stop coming.
            let host_only = settings.endpoint.host_candidates_only();
            let candidates = candidates.clone();
            let last_candidate = Arc::new(Mutex::new(None::<Instant>));
            let answer = answer.clone();
            let webrtcbin_weak = webrtcbin.downgrade();
            let on_candidate = glib::closure!(move |_: &gst::Element, mline: u32, candidate: Option<&str>| {
                let Some(candidate) = candidate.filter(|c| !c.is_empty()).map(str::to_owned) else { return };
                candidates.lock().unwrap().push(LocalCandidate { mline, candidate });
                let first = last_candidate.lock().unwrap().replace(Instant::now()).is_none();
                if host_only && first {
                    let (last, answer, webrtcbin) = (last_candidate.clone(), answer.clone(), webrtcbin_weak.clone());
                    RUNTIME.spawn(async move {
                        loop {
                            tokio::time::sleep(HOST_CANDIDATES_SETTLE / 2).await;
                            let quiet = last.lock().unwrap().is_some_and(|t| t.elapsed() >= HOST_CANDIDATES_SETTLE);
                            if quiet {
                                answer(webrtcbin.upgrade().as_ref());
                                return;
                            }
                        }
                    });
                }
            });
            webrtcbin.connect_closure("on-ice-candidate", false, on_candidate);
        }
        {
            let answer = answer.clone();
            webrtcbin.connect_notify(Some("ice-gathering-state"), move |webrtcbin, _| {
                let state = webrtcbin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
                if state == gst_webrtc::WebRTCICEGatheringState::Complete {
                    answer(Some(webrtcbin));
                }
            });
        }
        {
            // The gathering deadline; also answers 409 for a session replaced meanwhile.
            let (answer, webrtcbin) = (answer.clone(), webrtcbin.downgrade());
            RUNTIME.spawn(async move {
                tokio::time::sleep(GATHERING_TIMEOUT).await;
                answer(webrtcbin.upgrade().as_ref());
            });
        }

        let description = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp_message);
        let element = self.obj().downgrade();
        let applied = negotiating.clone();
        let fail = move |why: String| {
            negotiating.store(false, Ordering::Relaxed);
            let Some(element) = element.upgrade() else { return };
            let imp = element.imp();
            // A session replaced meanwhile fails too (its webrtcbin is closed): 409, not 422.
            let rejection = imp.no_longer_current(&id).unwrap_or_else(|| Rejection::new(422, why.clone()));
            if let Some(reply) = reply.lock().unwrap().take() {
                let _ = reply.send(Err(rejection));
            }
            // Never answered: it goes without ending the stream.
            let ending = imp.state.lock().unwrap().sessions.abandon(&id, &why);
            if let Some(ending) = ending {
                imp.carry_out(ending);
            }
        };
        // Weak: a promise webrtcbin still holds (a session torn down mid-negotiation) must not
        // keep webrtcbin, and with it its ICE sockets, alive.
        let webrtc = webrtcbin.downgrade();
        let promise = gst::Promise::with_change_func(move |reply| {
            if let Err(e) = promise_reply(reply) {
                return fail(format!("webrtcbin refused the offer: {e}"));
            }
            let Some(webrtc) = webrtc.upgrade() else { return fail("the session was torn down".into()) };
            let webrtc2 = webrtc.downgrade();
            let promise = gst::Promise::with_change_func(move |reply| {
                let local = match promise_reply(reply).and_then(|s| {
                    s.and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok())
                        .ok_or_else(|| "no answer".to_string())
                }) {
                    Ok(local) => local,
                    Err(e) => return fail(format!("webrtcbin could not answer the offer: {e}")),
                };
                let local = match as_dtls_server(&local, &offer) {
                    Ok(local) => local,
                    Err(e) => return fail(format!("webrtcbin's answer: {e}")),
                };
                let Some(webrtc2) = webrtc2.upgrade() else { return fail("the session was torn down".into()) };
                let webrtcbin = webrtc2.downgrade();
                let promise = gst::Promise::with_change_func(move |reply| {
                    if let Err(e) = promise_reply(reply) {
                        return fail(format!("webrtcbin refused its own answer: {e}"));
                    }
                    // Offer and answer applied, its transports made: it may be stopped.
                    applied.store(false, Ordering::Relaxed);
                    gst::debug!(CAT, "Offer and answer applied {:?} after the POST", posted.elapsed());
                    let wait = GATHERING_TIMEOUT.saturating_sub(posted.elapsed()).max(GATHERING_AFTER_LOCAL);
                    RUNTIME.spawn(async move {
                        tokio::time::sleep(wait).await;
                        answer(webrtcbin.upgrade().as_ref());
                    });
                });
                webrtc2.emit_by_name::<()>("set-local-description", &[&local, &promise]);
            });
            webrtc.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
        });
        webrtcbin.emit_by_name::<()>("set-remote-description", &[&description, &promise]);
    }

    pub(super) fn build_session(
        &self,
        id: &str,
        settings: &Settings,
        media: Vec<MediaPlan>,
        (offer, answer): (Sdp, Arc<Mutex<Option<Sdp>>>),
        peer: Peer,
    ) -> Result<Session, String> {
        let bin = gst::Bin::with_name(&format!("session-{id}"));
        let webrtcbin = gst::ElementFactory::make("webrtcbin")
            .name(format!("webrtcbin-{id}"))
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", settings.latency)
            .build()
            .map_err(|_| {
                "webrtcbin is missing (Debian package gstreamer1.0-plugins-bad, gstreamer1.0-nice)".to_string()
            })?;
        settings.endpoint.configure_ice(&webrtcbin)?;
        // Ask for retransmissions (answer with rtcp-fb nack) on every transceiver.
        webrtcbin.connect("on-new-transceiver", false, |values| {
            if let Ok(transceiver) = values[1].get::<gst_webrtc::WebRTCRTPTransceiver>() {
                transceiver.set_property("do-nack", true);
            }
            None
        });
        // NACKs go out when a loss is found (see RTCP_RR_BANDWIDTH). The session's bandwidth is
        // given, not discovered: until rtpsession has measured it, reports were 0.5 s apart.
        if let Some(webrtcbin) = webrtcbin.downcast_ref::<gst::Bin>() {
            webrtcbin.connect_deep_element_added(|_, _, element| {
                match element.factory().map(|f| f.name()) {
                    Some(name) if name == "rtpsession" => {
                        element.set_property("bandwidth", f64::from(START_BITRATE_KBPS) * 1000.0 / 8.0);
                        element.set_property("rtcp-rr-bandwidth", RTCP_RR_BANDWIDTH);
                    }
                    // Retransmissions only for packets known lost (a gap), not for the packet
                    // after the last one before it is due: a publisher that pauses longer than
                    // the latency (a busy encoder) had that packet declared lost, then dropped
                    // as too late when it came, and the stream lost a GOP.
                    Some(name) if name == "rtpjitterbuffer" => element.set_property("rtx-next-seqnum", false),
                    _ => {}
                }
            });
        }
        bin.add(&webrtcbin).map_err(|e| e.to_string())?;

        let started = Instant::now();
        let last_media_ms = Arc::new(AtomicU64::new(0));
        let first_media_ms = Arc::new(AtomicU64::new(u64::MAX));
        let received_ms = Arc::new(AtomicU64::new(u64::MAX));
        let keyframes = Arc::new(AtomicU64::new(0));
        let element = self.obj().downgrade();
        let session_id = id.to_owned();
        let choice = settings.layer_choice();
        let layered = media
            .iter()
            .enumerate()
            .filter(|(_, plan)| plan.codec.is_some() && !plan.rids.is_empty())
            .map(|(mline, plan)| {
                let mut selector = LayerSelector::new(choice, plan.rids.clone(), LAYER_CHOICE_WINDOW);
                if settings.analysis_min_height > 0 {
                    selector = selector.with_analysis(settings.analysis_min_height);
                }
                (
                    mline,
                    Arc::new(LayeredSection {
                        selector: Mutex::new(selector),
                        chains: Mutex::default(),
                        pads: Mutex::default(),
                    }),
                )
            })
            .collect();
        let layer_ssrcs = Arc::new(Mutex::new(HashMap::new()));
        let receiving: Arc<Mutex<Vec<String>>> = Arc::default();
        let context = PadContext {
            plans: media.clone(),
            output: settings.output,
            choice,
            started,
            last_media_ms: last_media_ms.clone(),
            first_media_ms: first_media_ms.clone(),
            received_ms: received_ms.clone(),
            keyframes: keyframes.clone(),
            used_names: Mutex::default(),
            layered,
            layer_ssrcs: layer_ssrcs.clone(),
            receiving: receiving.clone(),
        };
        webrtcbin.connect_pad_added(move |webrtcbin, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            let Some(element) = element.upgrade() else { return };
            let imp = element.imp();
            if let Err(e) = imp.link_session_pad(webrtcbin, pad, &context) {
                gst::element_imp_warning!(imp, gst::StreamError::Decode, ["Session {session_id}: {e}"]);
            }
        });
        for property in ["connection-state", "ice-connection-state"] {
            let element = self.obj().downgrade();
            let id = id.to_owned();
            webrtcbin.connect_notify(Some(property), move |webrtcbin, pspec| {
                let value = webrtcbin.property_value(pspec.name());
                let failed = match pspec.name() {
                    "connection-state" => matches!(
                        value.get::<gst_webrtc::WebRTCPeerConnectionState>(),
                        Ok(gst_webrtc::WebRTCPeerConnectionState::Failed
                            | gst_webrtc::WebRTCPeerConnectionState::Closed)
                    ),
                    _ => matches!(
                        value.get::<gst_webrtc::WebRTCICEConnectionState>(),
                        Ok(gst_webrtc::WebRTCICEConnectionState::Failed | gst_webrtc::WebRTCICEConnectionState::Closed)
                    ),
                };
                if failed && let Some(element) = element.upgrade() {
                    element.imp().end_session(&id, &format!("{} failed", pspec.name()));
                }
            });
        }
        self.obj().add(&bin).map_err(|e| e.to_string())?;
        Ok(Session {
            id: id.to_owned(),
            bin,
            webrtcbin,
            peer,
            offer,
            answer,
            media,
            patching: Arc::default(),
            started,
            last_media_ms,
            first_media_ms,
            received_ms,
            silent: Mutex::default(),
            keyframes,
            keyframe_requests: Arc::new(AtomicU64::new(0)),
            negotiating: Arc::default(),
            stats: Arc::new(Mutex::new(SessionStats::default())),
            layer_ssrcs,
            receiving,
        })
    }

    pub(super) fn compose_answer(
        &self,
        webrtcbin: &gst::Element,
        candidates: &[LocalCandidate],
        settings: &Settings,
        offer: &Sdp,
    ) -> Result<String, Rejection> {
        let local = webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
            .ok_or_else(|| Rejection::new(500, "webrtcbin produced no answer"))?;
        let text = local.sdp().as_text().map_err(|_| Rejection::new(500, "answer cannot be written"))?;
        let public = settings.endpoint.public_addresses().map_err(|e| Rejection::new(500, e))?;
        let text = sdp::finish_answer(&text, candidates, &public, START_BITRATE_KBPS)
            .map_err(|e| Rejection::new(500, e.to_string()))?;
        sdp::accept_layers(&text, offer).map_err(|e| Rejection::new(500, e.to_string()))
    }

    /// An ICE restart as the answerer (RFC 9725 4.4.2). webrtcbin has no ICE restart of its own
    /// (its answers keep the first answer's credentials), but it takes a renegotiation: the
    /// session's offer with the publisher's new credentials and candidates goes in as a new
    /// remote offer, and webrtcbin's answer, with new credentials of ours written into it, as the
    /// local description; it hands both pairs of credentials to its ICE agent, whose
    /// connectivity checks then use them.
    pub(super) fn restart_ice(
        &self,
        resource: &str,
        webrtcbin: &gst::Element,
        frag: &sdp::SdpFragment,
    ) -> Result<Patched, Rejection> {
        let (offer, sent_answer) = {
            let state = self.state.lock().unwrap();
            let session = state.session.as_ref().filter(|s| s.id == resource);
            let session = session.ok_or_else(|| state.sessions.not_found(resource))?;
            (session.offer.clone(), session.answer.lock().unwrap().clone())
        };
        let sent_answer = sent_answer.ok_or_else(|| Rejection::new(409, "the session has not been answered yet"))?;
        let offer = sdp::restart_offer(&offer, frag).map_err(|e| Rejection::new(400, e.to_string()))?;
        let failed = |what: &str, why: String| {
            gst::warning!(CAT, imp = self, "ICE restart of session {resource}: {what}: {why}");
            Rejection::new(500, format!("ICE restart failed: {what}: {why}"))
        };
        let message = gst_sdp::SDPMessage::parse_buffer(offer.to_string().as_bytes())
            .map_err(|_| Rejection::new(400, "the restarted offer cannot be parsed"))?;
        let description = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
        wait_promise(webrtcbin, "set-remote-description", &description).map_err(|e| failed("new remote offer", e))?;
        if webrtcbin.property::<gst_webrtc::WebRTCSignalingState>("signaling-state")
            != gst_webrtc::WebRTCSignalingState::HaveRemoteOffer
        {
            return Err(failed("new remote offer", "webrtcbin did not take it".into()));
        }
        let promise = gst::Promise::new();
        webrtcbin.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
        promise.wait();
        let answer = promise_reply(Ok(promise.get_reply()))
            .and_then(|s| {
                let answer = s.and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok());
                answer.ok_or_else(|| "no answer".to_string())
            })
            .map_err(|e| failed("answer", e))?;
        let ours = IceCredentials::random();
        let text = answer.sdp().as_text().map_err(|e| failed("answer", e.to_string()))?;
        let text = sdp::with_credentials(&text, &ours).map_err(|e| failed("answer", e.to_string()))?;
        // The DTLS role stays the one of the first answer.
        let offered = Sdp::parse(&offer.to_string()).map_err(|e| failed("offer", e.to_string()))?;
        let text = sdp::as_dtls_server(&text, &offered).map_err(|e| failed("answer", e.to_string()))?;
        let message =
            gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).map_err(|_| failed("answer", "unparsable".into()))?;
        let answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        wait_promise(webrtcbin, "set-local-description", &answer).map_err(|e| failed("new local answer", e))?;
        if webrtcbin.property::<gst_webrtc::WebRTCSignalingState>("signaling-state")
            != gst_webrtc::WebRTCSignalingState::Stable
        {
            return Err(failed("new local answer", "webrtcbin did not take it".into()));
        }

        let etag = whip::new_etag();
        {
            let mut state = self.state.lock().unwrap();
            state.sessions.restarted(resource, &etag, frag.ice_ufrag.as_deref())?;
            if let Some(session) = state.session.as_mut().filter(|s| s.id == resource) {
                session.offer = offer;
            }
        }
        let theirs = frag.ice_ufrag.as_deref().unwrap_or_default();
        gst::info!(CAT, imp = self, "Session {resource}: ICE restarted (ufrag {theirs}, ours {})", ours.ufrag);
        Ok(Patched::Restarted { sdpfrag: sdp::restart_sdpfrag(&sent_answer, &ours), etag })
    }
}
