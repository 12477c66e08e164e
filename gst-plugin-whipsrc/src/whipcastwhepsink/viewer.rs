//! One viewer: a pipeline of its own (appsrc ! payloader per stream into a webrtcbin), on the
//! element's clock and base time, so that a viewer's trouble (an error, a stall, its end) never
//! reaches the element's pipeline or the other viewers; its offer and our answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, WhepServerSink};
use super::settings::Settings;
use super::tracks::{FeedCounters, Track};
use crate::endpoint::{as_dtls_server, promise_reply, wait_promise};
use crate::sdp::{self, CodecOrder, CodecPreferences, LocalCandidate, MediaKind, OfferError, OfferLimits};
use crate::server::{Created, Patched, Peer, RUNTIME};
use crate::whip::{self, Rejection};

/// The answer goes out with the candidates gathered so far after this long.
const GATHERING_TIMEOUT: Duration = Duration::from_secs(3);
/// With host candidates only, the answer goes out once no candidate came for this long.
const HOST_CANDIDATES_SETTLE: Duration = Duration::from_millis(20);
/// A viewer that comes while a pad has had no data yet (a publisher's video starts after its
/// audio; an encoder's first frame) waits this long for it before it is answered without it.
const CAPS_WAIT: Duration = Duration::from_secs(3);
/// RTP packets at most this large: room for SRTP and TURN headers within a 1280-byte path.
const MTU: u32 = 1200;
/// A connected viewer from which nothing came for this long (receivers send RTCP reports every
/// second or so; ICE keeps its checks going) is gone: its browser was killed or frozen. webrtcbin
/// 1.22 cannot turn on libnice's consent freshness, which would tell.
pub(super) const SILENCE_LIMIT: Duration = Duration::from_secs(10);

pub(super) struct Viewer {
    pub(super) id: String,
    pub(super) etag: String,
    pub(super) peer: Peer,
    pub(super) started: Instant,
    pub(super) pipeline: gst::Pipeline,
    pub(super) webrtcbin: gst::Element,
    /// Each media section's mid, by index (trickled candidates name them).
    pub(super) mids: Vec<Option<String>>,
    /// The viewer's ICE username fragment: a PATCH with another one is an ICE restart.
    pub(super) remote_ufrag: Option<String>,
    /// The streams to start once connected: the track and this viewer's appsrc for it.
    pub(super) pending_feeds: Vec<(Arc<Track>, gst_app::AppSrc)>,
    pub(super) counters: Arc<FeedCounters>,
    /// Key frames this viewer asked for (PLI, FIR).
    pub(super) key_requests: Arc<AtomicU64>,
    /// Why the viewer can no longer watch, once it cannot.
    failure: Arc<Mutex<Option<String>>>,
    /// When a packet last came from the viewer (ms since `started`; 0: none yet).
    heard_ms: Arc<AtomicU64>,
}

impl Viewer {
    pub(super) fn connection_state(&self) -> String {
        let state = self.webrtcbin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        format!("{state:?}").to_ascii_lowercase()
    }

    /// Why the viewer can no longer watch: its connection failed, its pipeline erred, or it went
    /// silent (as of `now`).
    pub(super) fn failure(&self, now: Instant) -> Option<String> {
        if let Some(failure) = self.failure.lock().unwrap().clone() {
            return Some(failure);
        }
        let heard = self.heard_ms.load(Ordering::Relaxed);
        let silent = now.saturating_duration_since(self.started).saturating_sub(Duration::from_millis(heard));
        (heard > 0 && silent >= SILENCE_LIMIT)
            .then(|| format!("nothing came from the viewer for {} s", silent.as_secs()))
    }
}

/// The payloader for a codec as the SDP names it, sending payload type `pt`.
fn payloader(codec: &str, pt: u8) -> Result<gst::Element, String> {
    let (factory, extra): (&str, &[(&str, &str)]) = match codec {
        "H264" => ("rtph264pay", &[("config-interval", "-1"), ("aggregate-mode", "zero-latency")]),
        "H265" => ("rtph265pay", &[("config-interval", "-1"), ("aggregate-mode", "zero-latency")]),
        "VP8" => ("rtpvp8pay", &[("picture-id-mode", "15-bit")]),
        "VP9" => ("rtpvp9pay", &[("picture-id-mode", "15-bit")]),
        "AV1" => ("rtpav1pay", &[]),
        "OPUS" => ("rtpopuspay", &[]),
        other => return Err(format!("no payloader for {other}")),
    };
    let mut builder = gst::ElementFactory::make(factory).property("pt", u32::from(pt)).property("mtu", MTU);
    for (name, value) in extra {
        builder = builder.property_from_str(name, value);
    }
    builder.build().map_err(|_| {
        let hint = if codec == "AV1" { " (gst-plugins-rs rtp plugin)" } else { " (gstreamer1.0-plugins-good)" };
        format!("{factory} is missing{hint}")
    })
}

/// Builds a viewer for `offer` and answers it, or says why not.
pub(super) fn start(
    imp: &WhepServerSink,
    settings: &Settings,
    offer: &str,
    peer: Peer,
) -> Result<(Viewer, Created), Rejection> {
    let tracks = imp.tracks_with_codecs(CAPS_WAIT);
    if tracks.is_empty() {
        return Err(Rejection::new(503, "nothing to watch yet: no media has reached the stream")
            .with_header("retry-after", "2"));
    }
    let mut prefs = CodecPreferences { video: Vec::new(), audio: Vec::new(), order: CodecOrder::Offer };
    for (track, codec) in &tracks {
        let list = if track.video { &mut prefs.video } else { &mut prefs.audio };
        if !list.iter().any(|c| c == codec) {
            list.push((*codec).to_owned());
        }
    }
    let prepared = sdp::prepare_viewer_offer(offer, &prefs, &OfferLimits::default()).map_err(|e| {
        let status = if matches!(e, OfferError::Malformed(_)) { 400 } else { 422 };
        Rejection::new(status, e.to_string())
    })?;
    let id = whip::random_id();
    let failed = |what: &str, why: String| {
        gst::warning!(CAT, imp = imp, "Viewer {id}: {what}: {why}");
        Rejection::new(500, format!("{what}: {why}"))
    };

    let pipeline = gst::Pipeline::with_name(&format!("whep-viewer-{id}"));
    let element = imp.obj();
    if let (Some(clock), Some(base_time)) = (element.clock(), element.base_time()) {
        pipeline.use_clock(Some(&clock));
        pipeline.set_start_time(gst::ClockTime::NONE);
        pipeline.set_base_time(base_time);
    }
    let webrtcbin =
        gst::ElementFactory::make("webrtcbin").property_from_str("bundle-policy", "max-bundle").build().map_err(
            |_| failed("webrtcbin is missing", "Debian packages gstreamer1.0-plugins-bad, gstreamer1.0-nice".into()),
        )?;
    settings.endpoint.configure_ice(&webrtcbin).map_err(|e| failed("ICE settings", e))?;
    pipeline.add(&webrtcbin).map_err(|e| failed("pipeline", e.to_string()))?;

    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    if let Some(bus) = pipeline.bus() {
        let failure = failure.clone();
        bus.set_sync_handler(move |_, message| {
            if let gst::MessageView::Error(e) = message.view() {
                failure.lock().unwrap().get_or_insert_with(|| format!("error: {}", e.error()));
            }
            gst::BusSyncReply::Drop
        });
    }
    let candidates: Arc<Mutex<(Vec<LocalCandidate>, Option<Instant>)>> = Arc::default();
    {
        let candidates = candidates.clone();
        webrtcbin.connect("on-ice-candidate", false, move |values| {
            let mline = values.get(1).and_then(|v| v.get::<u32>().ok())?;
            let candidate = values.get(2).and_then(|v| v.get::<String>().ok()).filter(|c| !c.is_empty())?;
            let mut candidates = candidates.lock().unwrap();
            candidates.0.push(LocalCandidate { mline, candidate });
            candidates.1 = Some(Instant::now());
            None
        });
    }
    // Every packet from the viewer (RTCP, STUN) enters through webrtcbin's nicesrc.
    let started = Instant::now();
    let heard_ms = Arc::new(AtomicU64::new(0));
    {
        let heard_ms = heard_ms.clone();
        pipeline.connect_deep_element_added(move |_, _, element| {
            if element.factory().is_some_and(|f| f.name() == "nicesrc")
                && let Some(pad) = element.static_pad("src")
            {
                let heard_ms = heard_ms.clone();
                pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, move |_, _| {
                    heard_ms.store(started.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
        });
    }
    let stop_on_error = |rejection: Rejection| {
        let _ = pipeline.set_state(gst::State::Null);
        rejection
    };
    pipeline.set_state(gst::State::Playing).map_err(|e| stop_on_error(failed("viewer pipeline", e.to_string())))?;

    let message = gst_sdp::SDPMessage::parse_buffer(prepared.sdp.to_string().as_bytes())
        .map_err(|_| stop_on_error(Rejection::new(400, "the offer cannot be parsed")))?;
    let description = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
    wait_promise(&webrtcbin, "set-remote-description", &description)
        .map_err(|e| stop_on_error(Rejection::new(422, format!("webrtcbin refused the offer: {e}"))))?;

    let counters = Arc::new(FeedCounters::default());
    let key_requests = Arc::new(AtomicU64::new(0));
    let mut pending_feeds = Vec::new();
    let mut used = Vec::new();
    for (mline, plan) in prepared.media.iter().enumerate() {
        let Some(codec) = &plan.codec else { continue };
        let video = plan.kind == MediaKind::Video;
        let found = tracks
            .iter()
            .enumerate()
            .find(|(i, (t, c))| !used.contains(i) && t.video == video && c.eq_ignore_ascii_case(&codec.name));
        let Some((index, (track, _))) = found else { continue };
        used.push(index);
        let caps = track.state.lock().unwrap().caps.clone();
        let appsrc = gst_app::AppSrc::builder()
            .name(format!("{}-src", track.pad_name))
            .format(gst::Format::Time)
            .is_live(true)
            .block(false)
            .max_bytes(64 << 20)
            .build();
        appsrc.set_caps(caps.as_ref());
        let pay = payloader(&codec.name, codec.payload_type).map_err(|e| stop_on_error(failed("payloader", e)))?;
        pipeline.add_many([appsrc.upcast_ref(), &pay]).map_err(|e| stop_on_error(failed("pipeline", e.to_string())))?;
        appsrc.link(&pay).map_err(|e| stop_on_error(failed("appsrc to payloader", e.to_string())))?;
        let sink = webrtcbin
            .request_pad_simple(&format!("sink_{mline}"))
            .ok_or_else(|| stop_on_error(failed("webrtcbin", format!("no sink pad for media {mline}"))))?;
        let src = pay.static_pad("src").ok_or_else(|| stop_on_error(failed("payloader", "no src pad".into())))?;
        src.link(&sink).map_err(|e| stop_on_error(failed("payloader to webrtcbin", format!("{e:?}"))))?;
        if let Some(transceiver) = sink.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver") {
            transceiver.set_property("direction", gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly);
        }
        // The viewer's PLI/FIR come up to its appsrc as force-key-unit events: asked upstream.
        if let Some(pad) = appsrc.static_pad("src") {
            let (element, track, key_requests) = (imp.obj().downgrade(), Arc::downgrade(track), key_requests.clone());
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                // Passed on to appsrc, which ignores it (dropped here, GStreamer 1.22 unreffed a
                // NULL event: GStreamer-CRITICAL).
                if info.event().is_some_and(|e| gst_video::UpstreamForceKeyUnitEvent::parse(e).is_ok()) {
                    key_requests.fetch_add(1, Ordering::Relaxed);
                    if let (Some(element), Some(track)) = (element.upgrade(), track.upgrade()) {
                        element.imp().request_key_unit(&track);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        for element in [appsrc.upcast_ref::<gst::Element>(), &pay] {
            let _ = element.sync_state_with_parent();
        }
        pending_feeds.push((track.clone(), appsrc));
    }
    if pending_feeds.is_empty() {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(Rejection::new(422, "no media section of the offer receives a codec this stream has"));
    }

    let promise = gst::Promise::new();
    webrtcbin.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
    promise.wait();
    let answer = promise_reply(Ok(promise.get_reply()))
        .and_then(|s| {
            s.and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok())
                .ok_or_else(|| "no answer".to_string())
        })
        .and_then(|answer| as_dtls_server(&answer, &prepared.sdp))
        .map_err(|e| stop_on_error(failed("webrtcbin could not answer", e)))?;
    wait_promise(&webrtcbin, "set-local-description", &answer)
        .map_err(|e| stop_on_error(failed("webrtcbin refused its answer", e)))?;

    // Our candidates: all of them (gathering complete), or host candidates once they stop
    // coming, or what there is at the deadline.
    let host_only = settings.endpoint.host_candidates_only();
    let posted = Instant::now();
    loop {
        let complete = webrtcbin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            == gst_webrtc::WebRTCICEGatheringState::Complete;
        let settled = candidates.lock().unwrap().1.is_some_and(|last| last.elapsed() >= HOST_CANDIDATES_SETTLE);
        if complete || (host_only && settled) || posted.elapsed() >= GATHERING_TIMEOUT {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let local = webrtcbin
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| stop_on_error(failed("webrtcbin", "no local description".into())))?;
    let text = local.sdp().as_text().map_err(|e| stop_on_error(failed("answer", e.to_string())))?;
    let public = settings.endpoint.public_addresses().map_err(|e| stop_on_error(failed("public-address", e)))?;
    let found = candidates.lock().unwrap().0.clone();
    let text =
        sdp::finish_answer(&text, &found, &public, 0).map_err(|e| stop_on_error(failed("answer", e.to_string())))?;
    gst::debug!(CAT, imp = imp, "Viewer {id}: offer\n{offer}\nanswer\n{text}");

    {
        let (element, id, failure) = (imp.obj().downgrade(), id.clone(), failure.clone());
        webrtcbin.connect_notify(Some("connection-state"), move |webrtcbin, _| {
            use gst_webrtc::WebRTCPeerConnectionState as S;
            match webrtcbin.property::<S>("connection-state") {
                S::Connected => {
                    let (element, id) = (element.clone(), id.clone());
                    // Not on webrtcbin's own thread: joining pushes the GOP kept so far.
                    RUNTIME.spawn_blocking(move || {
                        if let Some(element) = element.upgrade() {
                            element.imp().start_feeds(&id);
                        }
                    });
                }
                state @ (S::Failed | S::Closed) => {
                    failure.lock().unwrap().get_or_insert_with(|| format!("connection {state:?}").to_ascii_lowercase());
                }
                _ => {}
            }
        });
    }

    let etag = whip::new_etag();
    let mids = prepared.media.iter().map(|m| m.mid.clone()).collect();
    let remote_ufrag = prepared.sdp.media.first().and_then(|m| m.attribute("ice-ufrag")).map(str::to_owned);
    let created =
        Created { answer: text, resource: id.clone(), etag: etag.clone(), links: settings.endpoint.ice_server_links() };
    let viewer = Viewer {
        id,
        etag,
        peer,
        started,
        pipeline,
        webrtcbin,
        mids,
        remote_ufrag,
        pending_feeds,
        counters,
        key_requests,
        failure,
        heard_ms,
    };
    Ok((viewer, created))
}

/// Stops a viewer's pipeline (blocks: never from one of its threads).
pub(super) fn stop(viewer: Viewer) {
    if let Some(bus) = viewer.pipeline.bus() {
        bus.unset_sync_handler();
    }
    let _ = viewer.pipeline.set_state(gst::State::Null);
}

/// Candidates trickled by a viewer (PATCH, RFC 9725 4.3.1 as WHEP uses it): added; an ICE
/// restart is not offered to viewers (405: a viewer POSTs again).
pub(super) fn trickle(
    webrtcbin: &gst::Element,
    etag: &str,
    mids: &[Option<String>],
    remote_ufrag: Option<&str>,
    sdpfrag: &str,
    if_match: Option<&str>,
) -> Result<Patched, Rejection> {
    if let Some(given) = if_match
        && given != "*"
        && given != etag
    {
        return Err(Rejection::new(412, "If-Match does not match the session's ETag"));
    }
    let frag = sdp::parse_sdpfrag(sdpfrag).map_err(|e| Rejection::new(400, e.to_string()))?;
    if frag.ice_ufrag.is_some() && frag.ice_ufrag.as_deref() != remote_ufrag {
        return Err(Rejection::new(405, "ICE restart is not supported for viewers: POST a new offer")
            .with_header("allow", "OPTIONS, PATCH, DELETE"));
    }
    for (mid, candidate) in &frag.candidates {
        let mline =
            mid.as_deref().and_then(|mid| mids.iter().position(|m| m.as_deref() == Some(mid))).unwrap_or(0) as u32;
        webrtcbin.emit_by_name::<()>("add-ice-candidate", &[&mline, &format!("candidate:{candidate}")]);
    }
    Ok(Patched::Trickle)
}
