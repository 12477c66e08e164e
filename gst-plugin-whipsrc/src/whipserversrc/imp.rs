use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::oneshot;

use super::{CodecOrder, OnDisconnect, Output, Simulcast};
use crate::rtptime::RtpTimeline;
use crate::sdp::{self, CodecPreferences, IceCredentials, LocalCandidate, MediaKind, MediaPlan, OfferError, Sdp};
use crate::server::{self, Created, Endpoint, Patched, Peer, RUNTIME, Registration, TlsFiles};
use crate::session::{Ending, PatchAction, Policy, Sessions};
use crate::simulcast::{Choice, ItemInfo, LayerSelector};
use crate::whip::{self, Rejection, StreamAuth};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("whipserversrc", gst::DebugColorFlags::empty(), Some("WHIP server source"))
});

/// The answer goes out with the candidates gathered so far if gathering takes longer.
const GATHERING_TIMEOUT: Duration = Duration::from_secs(3);
/// With host candidates only, the answer goes out once no candidate came for this long.
const HOST_CANDIDATES_SETTLE: Duration = Duration::from_millis(20);
/// With `simulcast=best|lowest`, how long after the first frame a layer that has not said its
/// size yet may keep the choice waiting.
const LAYER_CHOICE_WINDOW: Duration = Duration::from_millis(1000);
/// Start bitrate hinted to browsers in the answer.
const START_BITRATE_KBPS: u32 = 2500;
/// RTCP bandwidth of a receiver in bytes per second. Feedback (NACK, PLI) may go out early only
/// once per regular report interval (RFC 4585 3.5.2), which this bandwidth sets: about 100 ms, as
/// rtpsession computes it. A NACK then leaves well within the jitter buffer's latency; with the
/// defaults (0.5 s and more) most losses after the first in an interval were never repaired.
const RTCP_RR_BANDWIDTH: i32 = 20_000;

#[derive(Debug, Clone)]
struct Settings {
    address: String,
    port: u32,
    stream: String,
    token: Option<String>,
    tls_certificate: Option<String>,
    tls_key: Option<String>,
    stun_server: Option<String>,
    turn_server: Option<String>,
    public_address: Option<String>,
    port_range: Option<String>,
    latency: u32,
    video_codecs: String,
    audio_codecs: String,
    output: Output,
    simulcast: Simulcast,
    codec_order: CodecOrder,
    on_disconnect: OnDisconnect,
    replace_publisher: bool,
    publish_page: bool,
    max_sessions: u32,
    timeout: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address: "0.0.0.0".into(),
            port: 8080,
            stream: "live".into(),
            token: None,
            tls_certificate: None,
            tls_key: None,
            stun_server: None,
            turn_server: None,
            public_address: None,
            port_range: None,
            latency: 200,
            video_codecs: "AV1,H264,H265,VP9,VP8".into(),
            audio_codecs: "OPUS".into(),
            output: Output::Rtp,
            simulcast: Simulcast::Best,
            codec_order: CodecOrder::Offer,
            on_disconnect: OnDisconnect::Eos,
            replace_publisher: true,
            publish_page: false,
            max_sessions: 0,
            timeout: 10,
        }
    }
}

fn codec_list(list: &str) -> Vec<String> {
    list.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect()
}

impl Settings {
    fn preferences(&self) -> CodecPreferences {
        let order = match self.codec_order {
            CodecOrder::Offer => sdp::CodecOrder::Offer,
            CodecOrder::Server => sdp::CodecOrder::Server,
        };
        CodecPreferences { video: codec_list(&self.video_codecs), audio: codec_list(&self.audio_codecs), order }
    }

    fn policy(&self) -> Policy {
        Policy {
            replace_publisher: self.replace_publisher,
            timeout: (self.timeout > 0).then(|| Duration::from_secs(u64::from(self.timeout))),
            end_stream_with_session: self.on_disconnect == OnDisconnect::Eos,
        }
    }

    fn layer_choice(&self) -> Choice {
        match self.simulcast {
            Simulcast::Best => Choice::Best,
            Simulcast::Lowest => Choice::Lowest,
            Simulcast::All => Choice::All,
        }
    }

    fn socket_address(&self) -> Result<SocketAddr, String> {
        let ip: IpAddr =
            self.address.parse().map_err(|_| format!("address {:?} is not an IP address", self.address))?;
        let port = u16::try_from(self.port).map_err(|_| format!("port {} out of range", self.port))?;
        Ok(SocketAddr::new(ip, port))
    }

    fn public_addresses(&self) -> Result<Vec<IpAddr>, String> {
        self.public_address
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().map_err(|_| format!("public-address {a:?} is not an IP address")))
            .collect()
    }

    fn port_range(&self) -> Result<Option<(u32, u32)>, String> {
        let Some(range) = self.port_range.as_deref().filter(|r| !r.is_empty()) else { return Ok(None) };
        let parse = || {
            let (min, max) = range.split_once('-')?;
            let (min, max): (u16, u16) = (min.trim().parse().ok()?, max.trim().parse().ok()?);
            (min > 0 && min <= max).then_some((u32::from(min), u32::from(max)))
        };
        parse().map(Some).ok_or_else(|| format!("port-range {range:?} is not MIN-MAX"))
    }

    fn tls(&self) -> Result<Option<TlsFiles>, String> {
        match (&self.tls_certificate, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => {
                Ok(Some(TlsFiles { certificate: c.into(), key: k.into() }))
            }
            _ => Err("HTTPS needs both tls-certificate and tls-key".into()),
        }
    }

    /// `Link` header values announcing our ICE servers (RFC 9725 4.6).
    fn ice_server_links(&self) -> Vec<String> {
        let mut links = Vec::new();
        if let Some(stun) = self.stun_server.as_deref().filter(|s| !s.is_empty()) {
            let host = stun.trim_start_matches("stun://");
            links.push(format!("<stun:{host}>; rel=\"ice-server\""));
        }
        if let Some(turn) = self.turn_server.as_deref().filter(|s| !s.is_empty()) {
            let (scheme, rest) = turn.split_once("://").unwrap_or(("turn", turn));
            let (credentials, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let (user, pass) = credentials.split_once(':').unwrap_or((credentials, ""));
            links.push(format!(
                "<{scheme}:{host}?transport=udp>; rel=\"ice-server\"; username=\"{user}\"; credential=\"{pass}\"; credential-type=\"password\""
            ));
        }
        links
    }
}

/// A persistent source pad of the element, fed by whichever session is current.
#[derive(Clone)]
struct OutputPad {
    appsrc: gst_app::AppSrc,
    ghost: gst::GhostPad,
    /// Where keyframe requests go: the sink of the current session's chain for this pad.
    upstream: Arc<Mutex<Option<gst::Pad>>>,
    warned_unlinked: Arc<AtomicBool>,
}

impl OutputPad {
    /// Hands a session's sample to the pad: dropped (with one warning) while nobody links the
    /// pad, so that it never stops the pipeline (not-linked); never blocks the session's thread.
    fn push(&self, sample: &gst::Sample, element: &glib::WeakRef<super::WhipServerSrc>) {
        if !self.ghost.is_linked() {
            if !self.warned_unlinked.swap(true, Ordering::Relaxed)
                && let Some(element) = element.upgrade()
            {
                gst::warning!(CAT, obj = element, "{} is not linked: its data is dropped", self.ghost.name());
            }
            return;
        }
        let _ = self.appsrc.push_sample(sample);
    }
}

/// The simulcast layers of one media section: which leaves on which pad.
struct LayeredSection {
    selector: Mutex<LayerSelector<gst::Sample>>,
    /// Each layer's chain (its appsink's sink pad), where a pad's key-frame requests go.
    chains: Mutex<HashMap<String, gst::Pad>>,
}

#[derive(Debug, Default, Clone)]
struct SessionStats {
    packets_received: u64,
    bytes_received: u64,
    packets_lost: i64,
    nack_count: u64,
    pli_count: u64,
    fir_count: u64,
    bitrate: u64,
    last_bytes: Option<(Instant, u64)>,
}

struct Session {
    id: String,
    bin: gst::Bin,
    webrtcbin: gst::Element,
    peer: Peer,
    /// The offer as webrtcbin took it, for ICE restarts.
    offer: Sdp,
    /// The answer the publisher got (our candidates), once sent.
    answer: Arc<Mutex<Option<Sdp>>>,
    media: Vec<MediaPlan>,
    /// Held by the PATCH being handled: an ICE restart changes the ETag and the credentials the
    /// next PATCH is checked against.
    patching: Arc<Mutex<()>>,
    started: Instant,
    /// Milliseconds since `started` of the last media buffer.
    last_media_ms: Arc<AtomicU64>,
    keyframes: Arc<AtomicU64>,
    keyframe_requests: Arc<AtomicU64>,
    stats: Arc<Mutex<SessionStats>>,
}

#[derive(Default)]
struct State {
    registration: Option<Registration>,
    /// Who publishes, decided (session.rs).
    sessions: Sessions,
    /// The GStreamer side of the current session, once built.
    session: Option<Session>,
    outputs: HashMap<String, OutputPad>,
    watchdog: Option<tokio::task::JoinHandle<()>>,
}

pub struct WhipServerSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Time zero of the session logic's clock.
    epoch: Instant,
}

#[glib::object_subclass]
impl ObjectSubclass for WhipServerSrc {
    const NAME: &'static str = "WhipcastWhipServerSrc";
    type Type = super::WhipServerSrc;
    type ParentType = gst::Bin;

    fn new() -> Self {
        Self { settings: Mutex::new(Settings::default()), state: Mutex::new(State::default()), epoch: Instant::now() }
    }
}

/// The server's handle on this element.
struct Handle(glib::WeakRef<super::WhipServerSrc>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&WhipServerSrc) -> T) -> Option<T> {
        self.0.upgrade().map(|e| f(e.imp()))
    }
}

fn gone() -> Rejection {
    Rejection::new(503, "the stream is shutting down").with_header("retry-after", "5")
}

impl Endpoint for Handle {
    fn auth(&self) -> StreamAuth {
        self.with(|imp| match imp.settings.lock().unwrap().token.clone().filter(|t| !t.is_empty()) {
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

/// The elements that turn a session's RTP into what `output` asks for.
fn chain_for(output: Output, encoding: &str) -> Result<Vec<&'static str>, String> {
    let parse: &[&'static str] = match (output, encoding) {
        (Output::Rtp, _) => return Ok(Vec::new()),
        (_, "AV1") => &["rtpav1depay-rs", "av1obufix"],
        // rtpframegate: only whole frames of a stream intact since its key frame reach the
        // stock depayloaders (rtpav1depay-rs does that itself).
        (_, "H264") => &["rtpframegate", "rtph264depay", "h264parse"],
        (_, "H265") => &["rtpframegate", "rtph265depay", "h265parse"],
        (_, "VP8") => &["rtpframegate", "rtpvp8depay"],
        (_, "VP9") => &["rtpframegate", "rtpvp9depay"],
        (_, "OPUS") => &["rtpopusdepay", "opusparse"],
        (_, other) => return Err(format!("no depayloader for {other}")),
    };
    let mut chain = parse.to_vec();
    if output == Output::Decoded {
        chain.push("decodebin");
    }
    Ok(chain)
}

fn pad_prefix(kind: MediaKind) -> &'static str {
    if kind == MediaKind::Video { "video" } else { "audio" }
}

/// How many pads a media section feeds: one, or one per simulcast layer with `simulcast=all`.
fn pads_of(plan: &MediaPlan, choice: Choice) -> usize {
    if choice == Choice::All { plan.rids.len().max(1) } else { 1 }
}

/// The number in the pad name (`video_<n>`) of the first pad of media section `mline`.
fn pad_index(plans: &[MediaPlan], mline: usize, kind: MediaKind, choice: Choice) -> usize {
    plans[..mline.min(plans.len())]
        .iter()
        .filter(|p| p.kind == kind && p.codec.is_some())
        .map(|p| pads_of(p, choice))
        .sum()
}

/// webrtcbin's answer with us as the DTLS server where the offer lets us choose (sdp::as_dtls_server).
fn as_dtls_server(
    answer: &gst_webrtc::WebRTCSessionDescription,
    offer: &Sdp,
) -> Result<gst_webrtc::WebRTCSessionDescription, String> {
    let text = answer.sdp().as_text().map_err(|e| e.to_string())?;
    let text = sdp::as_dtls_server(&text, offer).map_err(|e| e.to_string())?;
    let message = gst_sdp::SDPMessage::parse_buffer(text.as_bytes())
        .map_err(|_| "unparsable after setting a=setup".to_string())?;
    Ok(gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message))
}

/// `streams, video_0=(string)AV1, audio_0=(string)OPUS`: the pads a session will feed and their
/// codecs; and `layers, video_0=(string)best`: for each pad fed by simulcast, its rid
/// (`simulcast=all`), or `best`/`lowest` (the choice is announced once made).
fn stream_codecs(plans: &[MediaPlan], choice: Choice) -> (gst::Structure, gst::Structure) {
    let mut streams = gst::Structure::builder("streams");
    let mut layers = gst::Structure::builder("layers");
    for (mline, plan) in plans.iter().enumerate() {
        if let Some(codec) = &plan.codec
            && plan.kind != MediaKind::Other
        {
            let first = pad_index(plans, mline, plan.kind, choice);
            for k in 0..pads_of(plan, choice) {
                let name = format!("{}_{}", pad_prefix(plan.kind), first + k);
                streams = streams.field(&name, codec.name.as_str());
                let layer = match choice {
                    _ if plan.rids.is_empty() => continue,
                    Choice::All => plan.rids[k].as_str(),
                    Choice::Best => "best",
                    Choice::Lowest => "lowest",
                };
                layers = layers.field(&name, layer);
            }
        }
    }
    (streams.build(), layers.build())
}

/// What every pad of a session's webrtcbin is linked with.
struct PadContext {
    plans: Vec<MediaPlan>,
    output: Output,
    choice: Choice,
    started: Instant,
    last_media_ms: Arc<AtomicU64>,
    keyframes: Arc<AtomicU64>,
    used_names: Mutex<Vec<String>>,
    /// The simulcast sections, by media line.
    layered: HashMap<usize, Arc<LayeredSection>>,
}

/// The rid in an RTP packet's RID header extension `id` (one- or two-byte form, RFC 8285).
fn rtp_stream_id(buffer: &gst::BufferRef, id: u8) -> Option<String> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buffer).ok()?;
    let value = rtp.extension_onebyte_header(id, 0).or_else(|| rtp.extension_twobytes_header(id, 0).map(|(_, v)| v))?;
    let text = std::str::from_utf8(value).ok()?.trim_end_matches('\0');
    (!text.is_empty()).then(|| text.to_owned())
}

impl WhipServerSrc {
    fn start_session(&self, offer: String, peer: Peer, reply: oneshot::Sender<Result<Created, Rejection>>) {
        let settings = self.settings.lock().unwrap().clone();
        let prepared = match sdp::prepare_offer(&offer, &settings.preferences()) {
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
        let replaced = {
            let mut state = self.state.lock().unwrap();
            let now = self.epoch.elapsed();
            match state.sessions.admit(&settings.policy(), &id, &etag, remote_ufrag.as_deref(), now) {
                Ok(replaced) => replaced.map(|ending| (state.session.take().filter(|s| s.id == ending.id), ending)),
                Err(rejection) => {
                    let _ = reply.send(Err(rejection));
                    return;
                }
            }
        };
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
        let webrtcbin = session.webrtcbin.clone();
        let bin = session.bin.clone();
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
            let ending = Ending { id: id.clone(), reason: rejection.reason.clone(), end_stream: false };
            let _ = reply.send(Err(rejection));
            self.finish_session(session, &ending);
            return;
        }
        let reply = Arc::new(Mutex::new(Some(reply)));
        let candidates = Arc::new(Mutex::new(Vec::<LocalCandidate>::new()));

        let answer = {
            let (reply, candidates, settings, id, etag, offer) =
                (reply.clone(), candidates.clone(), settings.clone(), id.clone(), etag.clone(), offered.clone());
            let element = self.obj().downgrade();
            move |webrtcbin: &gst::Element| {
                let Some(reply) = reply.lock().unwrap().take() else { return };
                let Some(element) = element.upgrade() else { return };
                if let Some(rejection) = element.imp().no_longer_current(&id) {
                    let _ = reply.send(Err(rejection));
                    return;
                }
                let result = element.imp().compose_answer(webrtcbin, &candidates.lock().unwrap(), &settings, &offer);
                if let Ok(answer) = &result {
                    *sent_answer.lock().unwrap() = Sdp::parse(answer).ok();
                }
                let result = result.map(|answer| Created {
                    answer,
                    resource: id.clone(),
                    etag: etag.clone(),
                    links: settings.ice_server_links(),
                });
                if result.is_ok() {
                    element.imp().announce_session_started(&id);
                }
                let _ = reply.send(result);
            }
        };

        {
            // Without STUN or TURN every candidate is a host candidate, known at once; libnice
            // still takes ~200 ms to call gathering complete. Answer when candidates stop coming.
            let host_only = settings.stun_server.as_deref().unwrap_or("").is_empty()
                && settings.turn_server.as_deref().unwrap_or("").is_empty();
            let candidates = candidates.clone();
            let last_candidate = Arc::new(Mutex::new(None::<Instant>));
            let answer = answer.clone();
            let webrtcbin_weak = webrtcbin.downgrade();
            webrtcbin.connect("on-ice-candidate", false, move |values| {
                let mline = values[1].get::<u32>().unwrap();
                let candidate = values[2].get::<String>().unwrap();
                if candidate.is_empty() {
                    return None;
                }
                candidates.lock().unwrap().push(LocalCandidate { mline, candidate });
                let first = last_candidate.lock().unwrap().replace(Instant::now()).is_none();
                if host_only && first {
                    let (last, answer, webrtcbin) = (last_candidate.clone(), answer.clone(), webrtcbin_weak.clone());
                    RUNTIME.spawn(async move {
                        loop {
                            tokio::time::sleep(HOST_CANDIDATES_SETTLE / 2).await;
                            let quiet = last.lock().unwrap().is_some_and(|t| t.elapsed() >= HOST_CANDIDATES_SETTLE);
                            if quiet {
                                if let Some(webrtcbin) = webrtcbin.upgrade() {
                                    answer(&webrtcbin);
                                }
                                return;
                            }
                        }
                    });
                }
                None
            });
        }
        {
            let answer = answer.clone();
            webrtcbin.connect_notify(Some("ice-gathering-state"), move |webrtcbin, _| {
                let state = webrtcbin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state");
                if state == gst_webrtc::WebRTCICEGatheringState::Complete {
                    answer(webrtcbin);
                }
            });
        }
        {
            let answer = answer.clone();
            let webrtcbin = webrtcbin.downgrade();
            RUNTIME.spawn(async move {
                tokio::time::sleep(GATHERING_TIMEOUT).await;
                if let Some(webrtcbin) = webrtcbin.upgrade() {
                    answer(&webrtcbin);
                }
            });
        }

        if bin.sync_state_with_parent().is_err() {
            gst::warning!(CAT, imp = self, "Session bin did not follow the element's state");
        }
        let description = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp_message);
        let element = self.obj().downgrade();
        let fail = move |why: String| {
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
        let webrtc = webrtcbin.clone();
        let promise = gst::Promise::with_change_func(move |reply| {
            if let Err(e) = promise_reply(reply) {
                return fail(format!("webrtcbin refused the offer: {e}"));
            }
            let webrtc2 = webrtc.clone();
            let promise = gst::Promise::with_change_func(move |reply| {
                let answer = match promise_reply(reply).and_then(|s| {
                    s.and_then(|s| s.get::<gst_webrtc::WebRTCSessionDescription>("answer").ok())
                        .ok_or_else(|| "no answer".to_string())
                }) {
                    Ok(answer) => answer,
                    Err(e) => return fail(format!("webrtcbin could not answer the offer: {e}")),
                };
                let answer = match as_dtls_server(&answer, &offered) {
                    Ok(answer) => answer,
                    Err(e) => return fail(format!("webrtcbin's answer: {e}")),
                };
                webrtc2.emit_by_name::<()>("set-local-description", &[&answer, &None::<gst::Promise>]);
            });
            webrtc.emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, &promise]);
        });
        webrtcbin.emit_by_name::<()>("set-remote-description", &[&description, &promise]);
    }

    fn build_session(
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
        if let Some(stun) = settings.stun_server.as_deref().filter(|s| !s.is_empty()) {
            webrtcbin.set_property("stun-server", stun);
        }
        if let Some(turn) = settings.turn_server.as_deref().filter(|s| !s.is_empty()) {
            webrtcbin.set_property("turn-server", turn);
        }
        let ice = webrtcbin.property::<gst_webrtc::WebRTCICE>("ice-agent");
        // No UPnP port mapping attempts (libnice's default): slow, noisy, and not ours to do.
        if ice.find_property("agent").is_some() {
            let agent = ice.property::<glib::Object>("agent");
            if agent.find_property("upnp").is_some() {
                agent.set_property("upnp", false);
            }
        }
        if let Some((min, max)) = settings.port_range()? {
            ice.set_property("min-rtp-port", min);
            ice.set_property("max-rtp-port", max);
        }
        if let Ok(ip) = settings.address.parse::<IpAddr>()
            && !ip.is_unspecified()
        {
            // ICE on the address HTTP listens on (libnice skips loopback unless told).
            let _ = ice.emit_by_name::<bool>("add-local-ip-address", &[&ip.to_string()]);
        }
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
        let keyframes = Arc::new(AtomicU64::new(0));
        let element = self.obj().downgrade();
        let session_id = id.to_owned();
        let choice = settings.layer_choice();
        let layered = media
            .iter()
            .enumerate()
            .filter(|(_, plan)| plan.codec.is_some() && !plan.rids.is_empty())
            .map(|(mline, plan)| {
                let selector = LayerSelector::new(choice, plan.rids.clone(), LAYER_CHOICE_WINDOW);
                (mline, Arc::new(LayeredSection { selector: Mutex::new(selector), chains: Mutex::default() }))
            })
            .collect();
        let context = PadContext {
            plans: media.clone(),
            output: settings.output,
            choice,
            started,
            last_media_ms: last_media_ms.clone(),
            keyframes: keyframes.clone(),
            used_names: Mutex::default(),
            layered,
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
            keyframes,
            keyframe_requests: Arc::new(AtomicU64::new(0)),
            stats: Arc::new(Mutex::new(SessionStats::default())),
        })
    }

    fn compose_answer(
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
        let public = settings.public_addresses().map_err(|e| Rejection::new(500, e))?;
        let text = sdp::finish_answer(&text, candidates, &public, START_BITRATE_KBPS)
            .map_err(|e| Rejection::new(500, e.to_string()))?;
        sdp::accept_simulcast(&text, offer).map_err(|e| Rejection::new(500, e.to_string()))
    }

    fn link_session_pad(&self, webrtcbin: &gst::Element, pad: &gst::Pad, context: &PadContext) -> Result<(), String> {
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None))).ok_or("pad without caps")?;
        let s = caps.structure(0).ok_or("empty caps")?;
        let encoding = s
            .get::<&str>("encoding-name")
            .map_err(|_| format!("caps without encoding-name: {caps}"))?
            .to_ascii_uppercase();
        let kind = match s.get::<&str>("media") {
            Ok("video") => MediaKind::Video,
            Ok("audio") => MediaKind::Audio,
            _ => return Err(format!("pad {} is neither audio nor video: {caps}", pad.name())),
        };
        let mline = pad
            .property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver")
            .map(|t| t.mlineindex() as usize)
            .unwrap_or(0);
        let first = pad_index(&context.plans, mline, kind, context.choice);
        let prefix = pad_prefix(kind);
        // A simulcast layer: which pad it feeds, if any, is the selector's to say once the RID
        // header extension of its packets told which layer it is.
        let layered = context.layered.get(&mline).cloned();
        let rid = Arc::new(OnceLock::<String>::new());
        let name = match &layered {
            Some(_) => {
                let extension = context.plans.get(mline).and_then(|p| p.rid_extension).ok_or("no RID extension")?;
                let rid = rid.clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                    if rid.get().is_none()
                        && let Some(buffer) = info.buffer()
                        && let Some(value) = rtp_stream_id(buffer, extension)
                    {
                        gst::info!(CAT, obj = pad, "RTP stream {value:?}");
                        let _ = rid.set(value);
                    }
                    gst::PadProbeReturn::Ok
                });
                format!("{prefix}_{first}")
            }
            // Two streams in one section (a second SSRC) each get a pad of their own.
            None => {
                let mut used = context.used_names.lock().unwrap();
                let name = (first..).map(|i| format!("{prefix}_{i}")).find(|n| !used.contains(n)).unwrap();
                used.push(name.clone());
                name
            }
        };

        let clock_rate = s.get::<i32>("clock-rate").map_err(|_| format!("caps without clock-rate: {caps}"))?;
        let timeline = Mutex::new(RtpTimeline::new(clock_rate as u32));
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(buffer) = info.buffer_mut() {
                let rtp = buffer
                    .map_readable()
                    .ok()
                    .and_then(|m| m.get(4..8).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
                if let (Some(rtp), Some(arrival)) = (rtp, buffer.pts()) {
                    let pts = gst::ClockTime::from_nseconds(timeline.lock().unwrap().pts(rtp, arrival.nseconds()));
                    gst::trace!(CAT, obj = pad, "rtp {rtp} arrival {arrival} pts {pts}");
                    let b = buffer.make_mut();
                    b.set_pts(pts);
                    b.set_dts(pts);
                }
            }
            gst::PadProbeReturn::Ok
        });

        let bin = webrtcbin.parent().and_downcast::<gst::Bin>().ok_or("session bin gone")?;
        let mut elements = Vec::new();
        for factory in chain_for(context.output, &encoding)? {
            let mut builder = gst::ElementFactory::make(factory);
            if factory == "h264parse" || factory == "h265parse" {
                builder = builder.property("config-interval", -1i32);
            }
            elements.push(builder.build().map_err(|_| format!("element {factory} is missing"))?);
        }
        // An internal bridge: it must never hold the pipeline in preroll (async=false).
        let appsink = gst_app::AppSink::builder().sync(false).async_(false).build();
        if context.output == Output::Encoded {
            // What containers take (mp4mux and matroskamux want avc/hvc1, not byte-stream).
            match encoding.as_str() {
                "H264" => appsink.set_caps(Some(
                    &gst::Caps::builder("video/x-h264").field("stream-format", "avc").field("alignment", "au").build(),
                )),
                "H265" => appsink.set_caps(Some(
                    &gst::Caps::builder("video/x-h265").field("stream-format", "hvc1").field("alignment", "au").build(),
                )),
                _ => {}
            }
        }
        let upstream = appsink.static_pad("sink").unwrap();
        let element = self.obj().downgrade();
        let (started, last, keys) = (context.started, context.last_media_ms.clone(), context.keyframes.clone());
        let count_keyframes = kind == MediaKind::Video && context.output != Output::Rtp;
        let deliver: Box<dyn Fn(gst::Sample) + Send + Sync> = match layered {
            None => {
                let output_pad = self.output_pad(&name, kind)?;
                *output_pad.upstream.lock().unwrap() = Some(upstream);
                let element = element.clone();
                Box::new(move |sample| output_pad.push(&sample, &element))
            }
            Some(section) => {
                let element = element.clone();
                let warned = AtomicBool::new(false);
                Box::new(move |sample| {
                    let Some(rid) = rid.get() else {
                        if !warned.swap(true, Ordering::Relaxed)
                            && let Some(element) = element.upgrade()
                        {
                            gst::warning!(
                                CAT,
                                obj = element,
                                "A stream of a simulcast section without its rid: dropped"
                            );
                        }
                        return;
                    };
                    {
                        let mut chains = section.chains.lock().unwrap();
                        if !chains.contains_key(rid) {
                            chains.insert(rid.clone(), upstream.clone());
                        }
                    }
                    if let Some(element) = element.upgrade() {
                        element.imp().deliver_layer(&section, rid, sample, first, kind, started.elapsed());
                    }
                })
            }
        };
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    if count_keyframes
                        && sample.buffer().is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
                    {
                        keys.fetch_add(1, Ordering::Relaxed);
                    }
                    // A full or flushing output must not stall the session's RTP thread.
                    deliver(sample);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );

        for e in &elements {
            bin.add(e).map_err(|e| e.to_string())?;
        }
        bin.add(&appsink).map_err(|e| e.to_string())?;
        let decodebin = elements.last().filter(|e| e.factory().is_some_and(|f| f.name() == "decodebin")).cloned();
        let fixed: Vec<&gst::Element> = elements.iter().filter(|e| Some(*e) != decodebin.as_ref()).collect();
        let mut previous_pad = pad.clone();
        for e in &fixed {
            previous_pad.link(&e.static_pad("sink").unwrap()).map_err(|e| format!("link: {e:?}"))?;
            previous_pad = e.static_pad("src").unwrap();
        }
        match decodebin {
            Some(decodebin) => {
                previous_pad.link(&decodebin.static_pad("sink").unwrap()).map_err(|e| format!("link: {e:?}"))?;
                let sink_pad = appsink.static_pad("sink").unwrap();
                decodebin.connect_pad_added(move |_, pad| {
                    if !sink_pad.is_linked() {
                        let _ = pad.link(&sink_pad);
                    }
                });
            }
            None => {
                previous_pad.link(&appsink.static_pad("sink").unwrap()).map_err(|e| format!("link: {e:?}"))?;
            }
        }
        // Straight to the session's state: syncing with a bin that decodebin just sent back into
        // preroll would leave the sink waiting in PAUSED for data that never comes.
        let (_, target, _) = bin.state(gst::ClockTime::ZERO);
        for e in std::iter::once(appsink.upcast_ref()).chain(elements.iter().rev()) {
            e.set_state(target).map_err(|_| format!("{} cannot start", e.name()))?;
        }
        gst::info!(CAT, imp = self, "Session output {encoding} ({caps}) on {name}");
        Ok(())
    }

    /// A sample of simulcast layer `rid` (at `now` into the session): out on the pads the
    /// section's selector says, each pad's key-frame requests sent to the layer it carries.
    fn deliver_layer(
        &self,
        section: &LayeredSection,
        rid: &str,
        sample: gst::Sample,
        first: usize,
        kind: MediaKind,
        now: Duration,
    ) {
        let pixels = sample.caps().and_then(|c| c.structure(0)).and_then(|s| {
            let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
            Some(u64::try_from(w).ok()? * u64::try_from(h).ok()?)
        });
        let info = ItemInfo { bytes: sample.buffer().map_or(0, |b| b.size()), pixels };
        let (out, carried, newly_chosen) = {
            let mut selector = section.selector.lock().unwrap();
            let undecided = selector.chosen().is_none();
            let out = selector.push(rid, sample, info, now);
            let carried: Vec<Option<String>> =
                (0..selector.outputs()).map(|k| selector.rid_of_output(k).map(str::to_owned)).collect();
            let newly_chosen = selector.chosen().filter(|_| undecided).map(str::to_owned);
            (out, carried, newly_chosen)
        };
        let element = self.obj().downgrade();
        for (k, sample) in out {
            let name = format!("{}_{}", pad_prefix(kind), first + k);
            let Ok(pad) = self.output_pad(&name, kind) else { continue };
            if let Some(rid) = &carried[k] {
                let chain = section.chains.lock().unwrap().get(rid).cloned();
                let mut upstream = pad.upstream.lock().unwrap();
                if upstream.as_ref() != chain.as_ref() {
                    *upstream = chain;
                }
            }
            pad.push(&sample, &element);
        }
        if let Some(rid) = newly_chosen {
            let name = format!("{}_{first}", pad_prefix(kind));
            gst::info!(CAT, imp = self, "Simulcast: layer {rid:?} on {name}");
            let obj = self.obj();
            let s =
                gst::Structure::builder("whipserversrc-layer-chosen").field("pad", &name).field("rid", &rid).build();
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
    }

    /// The element's persistent pad `name` (created on first use).
    fn output_pad(&self, name: &str, kind: MediaKind) -> Result<OutputPad, String> {
        let mut state = self.state.lock().unwrap();
        if let Some(out) = state.outputs.get(name) {
            return Ok(out.clone());
        }
        let latency = gst::ClockTime::from_mseconds(u64::from(self.settings.lock().unwrap().latency));
        let appsrc = gst_app::AppSrc::builder()
            .name(format!("{name}-src"))
            .is_live(true)
            .format(gst::Format::Time)
            .do_timestamp(false)
            .min_latency(latency.nseconds() as i64)
            .max_bytes(64 << 20)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let obj = self.obj();
        obj.add(&appsrc).map_err(|e| e.to_string())?;
        let template = obj
            .pad_template(if kind == MediaKind::Video { "video_%u" } else { "audio_%u" })
            .ok_or("pad template missing")?;
        let target = appsrc.static_pad("src").unwrap();
        let ghost = gst::GhostPad::builder_from_template_with_target(&template, &target)
            .map_err(|e| e.to_string())?
            .name(name)
            .build();
        let upstream: Arc<Mutex<Option<gst::Pad>>> = Arc::default();
        {
            let (upstream, element) = (upstream.clone(), obj.downgrade());
            target.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                let Some(gst::PadProbeData::Event(event)) = &info.data else { return gst::PadProbeReturn::Ok };
                if !gst_video::ForceKeyUnitEvent::is(event) {
                    return gst::PadProbeReturn::Ok;
                }
                // To the current session, where webrtcbin turns it into PLI (it sends FIR when
                // all headers are asked for; key frames carry them in any case).
                let Some(pad) = upstream.lock().unwrap().clone() else { return gst::PadProbeReturn::Ok };
                let request = gst_video::UpstreamForceKeyUnitEvent::parse(event).ok();
                let pli = gst_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(false)
                    .count(request.as_ref().map_or(0, |r| r.count))
                    .running_time(request.and_then(|r| r.running_time))
                    .build();
                let sent = pad.push_event(pli);
                if let Some(element) = element.upgrade() {
                    element.imp().count_keyframe_request();
                }
                if sent { gst::PadProbeReturn::Handled } else { gst::PadProbeReturn::Ok }
            });
        }
        // Downstream may unlink this pad at any time (an app ending a recording): data already
        // queued in the appsrc is dropped instead of stopping it with not-linked.
        ghost.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, |pad, info| {
            if pad.is_linked() {
                return gst::PadProbeReturn::Ok;
            }
            // Taken and Handled, not Drop: gstreamer-rs takes the data out of the probe info, and
            // on Drop GStreamer 1.22 unrefs the emptied pointer (a GStreamer-CRITICAL).
            info.data.take();
            gst::PadProbeReturn::Handled
        });
        let _ = appsrc.sync_state_with_parent();
        ghost.set_active(true).map_err(|e| e.to_string())?;
        obj.add_pad(&ghost).map_err(|e| e.to_string())?;
        let out = OutputPad { appsrc, ghost, upstream, warned_unlinked: Arc::default() };
        state.outputs.insert(name.to_owned(), out.clone());
        Ok(out)
    }

    fn count_keyframe_request(&self) {
        if let Some(session) = &self.state.lock().unwrap().session {
            session.keyframe_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Emitted before the answer leaves, so before any media: a handler can prepare for the
    /// pads named in `streams` (e.g. `video_0` = `AV1`); the message's `layers` says which
    /// simulcast layer each pad fed by simulcast carries (the signal keeps its four arguments).
    fn announce_session_started(&self, id: &str) {
        let choice = self.settings.lock().unwrap().layer_choice();
        let (remote, user_agent, (streams, layers)) = {
            let state = self.state.lock().unwrap();
            match state.session.as_ref().filter(|s| s.id == id) {
                Some(s) => (
                    s.peer.address.to_string(),
                    s.peer.user_agent.clone().unwrap_or_default(),
                    stream_codecs(&s.media, choice),
                ),
                None => return,
            }
        };
        gst::info!(CAT, imp = self, "Session {id} started: {remote} ({user_agent}), {streams}, {layers}");
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

    fn delete_session(&self, resource: &str) -> Result<(), Rejection> {
        let policy = self.settings.lock().unwrap().policy();
        let ending = self.state.lock().unwrap().sessions.delete(&policy, resource)?;
        self.carry_out(ending);
        Ok(())
    }

    fn patch_session(&self, resource: &str, sdpfrag: &str, if_match: Option<&str>) -> Result<Patched, Rejection> {
        let patching = {
            let state = self.state.lock().unwrap();
            let session = state.session.as_ref().filter(|s| s.id == resource);
            session.ok_or_else(|| Rejection::new(404, "no such session"))?.patching.clone()
        };
        let _one_at_a_time = patching.lock().unwrap();
        let frag = sdp::parse_sdpfrag(sdpfrag).map_err(|e| Rejection::new(400, e.to_string()))?;
        let (webrtcbin, media, action) = {
            let state = self.state.lock().unwrap();
            let session = state
                .session
                .as_ref()
                .filter(|s| s.id == resource)
                .ok_or_else(|| Rejection::new(404, "no such session"))?;
            let action = state.sessions.patch(resource, frag.ice_ufrag.as_deref(), if_match)?;
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

    /// An ICE restart as the answerer (RFC 9725 4.4.2). webrtcbin has no ICE restart of its own
    /// (its answers keep the first answer's credentials), but it takes a renegotiation: the
    /// session's offer with the publisher's new credentials and candidates goes in as a new
    /// remote offer, and webrtcbin's answer, with new credentials of ours written into it, as the
    /// local description; it hands both pairs of credentials to its ICE agent, whose
    /// connectivity checks then use them.
    fn restart_ice(
        &self,
        resource: &str,
        webrtcbin: &gst::Element,
        frag: &sdp::SdpFragment,
    ) -> Result<Patched, Rejection> {
        let (offer, sent_answer) = {
            let state = self.state.lock().unwrap();
            let session = state.session.as_ref().filter(|s| s.id == resource);
            let session = session.ok_or_else(|| Rejection::new(404, "no such session"))?;
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

    /// Why session `id`, not answered yet, will not be: a newer POST replaced it (409) or the
    /// stream ended (503). `None` while it is current.
    fn no_longer_current(&self, id: &str) -> Option<Rejection> {
        let state = self.state.lock().unwrap();
        match (state.sessions.is_current(id), state.sessions.stream_ended()) {
            (true, _) => None,
            (false, true) => Some(Rejection::new(503, "the stream has ended")),
            (false, false) => Some(Rejection::new(409, "a newer publisher replaced this one before it was answered")),
        }
    }

    /// Ends the session `id` if it is still the current one (from any thread).
    fn end_session(&self, id: &str, reason: &str) {
        let policy = self.settings.lock().unwrap().policy();
        let ending = self.state.lock().unwrap().sessions.end(&policy, id, reason);
        if let Some(ending) = ending {
            self.carry_out(ending);
        }
    }

    /// Stops what the session logic ended: the session's webrtcbin (if built), and the stream
    /// where it says so. From any thread.
    fn carry_out(&self, ending: Ending) {
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
                Some(session) => element.imp().finish_session(session, &ending),
                // Its webrtcbin is still being made: start_session stops it once made.
                None if ending.end_stream => element.imp().end_outputs(),
                None => {}
            }
        });
    }

    /// EOS on every pad: the stream is over.
    fn end_outputs(&self) {
        let outputs: Vec<gst_app::AppSrc> = self.state.lock().unwrap().outputs.values().map(|o| o.appsrc.clone()).collect();
        for appsrc in outputs {
            let _ = appsrc.end_of_stream();
        }
    }

    /// Stops a session that is no longer current; the stream ends with it where `ending` says so.
    fn finish_session(&self, session: Session, ending: &Ending) {
        let reason = ending.reason.as_str();
        gst::info!(CAT, imp = self, "Session {} ended: {reason}", session.id);
        let _ = session.bin.set_state(gst::State::Null);
        let _ = self.obj().remove(&session.bin);
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

    /// Once a second: the session logic's timeouts, and the current session's stats.
    fn watch(&self) {
        let policy = self.settings.lock().unwrap().policy();
        let (ending, current) = {
            let mut state = self.state.lock().unwrap();
            let state = &mut *state;
            if let Some(s) = &state.session {
                let last_media = Duration::from_millis(s.last_media_ms.load(Ordering::Relaxed));
                state.sessions.media(&s.id, s.started.duration_since(self.epoch) + last_media);
            }
            let ending = state.sessions.handle_timeout(&policy, self.epoch.elapsed());
            (ending, state.session.as_ref().map(|s| (s.webrtcbin.clone(), s.stats.clone())))
        };
        if let Some(ending) = ending {
            self.carry_out(ending);
            return;
        }
        let Some((webrtcbin, stats)) = current else { return };
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

    fn stats(&self) -> gst::Structure {
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
                .field("keyframes", session.keyframes.load(Ordering::Relaxed))
                .field("keyframe-requests", session.keyframe_requests.load(Ordering::Relaxed))
                .build();
            builder = builder.field("session", current);
        }
        builder.build()
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let settings_error = |e: String| gst::error_msg!(gst::ResourceError::Settings, ["{e}"]);
        let address = settings.socket_address().map_err(settings_error)?;
        let tls = settings.tls().map_err(settings_error)?;
        settings.public_addresses().map_err(settings_error)?;
        settings.port_range().map_err(settings_error)?;
        if whip::parse_path(&format!("/whip/{}", settings.stream)).is_none() {
            return Err(settings_error(format!(
                "stream {:?} must be letters, digits, '-', '_' or '.'",
                settings.stream
            )));
        }
        if settings.token.as_deref().is_none_or(str::is_empty) {
            gst::warning!(CAT, imp = self, "No token set: any publisher is accepted on /whip/{}", settings.stream);
        }
        let handle = Arc::new(Handle(self.obj().downgrade()));
        let registration = server::register(address, tls, &settings.stream, handle)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["{e}"]))?;
        gst::info!(
            CAT,
            imp = self,
            "Serving WHIP on {}://{address}/whip/{}",
            if settings.tls_certificate.is_some() { "https" } else { "http" },
            settings.stream
        );
        let element = self.obj().downgrade();
        let watchdog = RUNTIME.spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                let element = element.clone();
                let alive = tokio::task::spawn_blocking(move || match element.upgrade() {
                    Some(e) => {
                        e.imp().watch();
                        true
                    }
                    None => false,
                })
                .await
                .unwrap_or(false);
                if !alive {
                    return;
                }
            }
        });
        let mut state = self.state.lock().unwrap();
        state.registration = Some(registration);
        state.watchdog = Some(watchdog);
        state.sessions.restart_stream();
        Ok(())
    }

    fn stop(&self) {
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

/// Emits `signal` (set-remote-description, set-local-description) and waits for its promise.
fn wait_promise(
    webrtcbin: &gst::Element,
    signal: &str,
    description: &gst_webrtc::WebRTCSessionDescription,
) -> Result<(), String> {
    let promise = gst::Promise::new();
    webrtcbin.emit_by_name::<()>(signal, &[description, &promise]);
    match promise.wait() {
        gst::PromiseResult::Replied => promise_reply(Ok(promise.get_reply())).map(|_| ()),
        other => Err(format!("{other:?}")),
    }
}

fn promise_reply(
    reply: Result<Option<&gst::StructureRef>, gst::PromiseError>,
) -> Result<Option<&gst::StructureRef>, String> {
    match reply {
        Ok(Some(s)) if s.has_field("error") => {
            Err(s.get::<glib::Error>("error").map(|e| e.to_string()).unwrap_or_else(|_| s.to_string()))
        }
        Ok(s) => Ok(s),
        Err(e) => Err(format!("{e:?}")),
    }
}

impl ObjectImpl for WhipServerSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("address").nick("Address").blurb("IP address the HTTP server listens on (ICE uses it too when it is not 0.0.0.0)").default_value(Some(d.address.as_str())).mutable_ready().build(),
                glib::ParamSpecUInt::builder("port").nick("Port").blurb("TCP port of the HTTP server; elements naming the same address and port share one server").maximum(65535).default_value(d.port).mutable_ready().build(),
                glib::ParamSpecString::builder("stream").nick("Stream").blurb("Stream name: publishers POST to /whip/<stream>").default_value(Some(d.stream.as_str())).mutable_ready().build(),
                glib::ParamSpecString::builder("token").nick("Token").blurb("Bearer token publishers must send (POST, PATCH, DELETE); empty: anyone may publish").mutable_ready().build(),
                glib::ParamSpecString::builder("tls-certificate").nick("TLS certificate").blurb("PEM certificate chain file: serve HTTPS (with tls-key)").mutable_ready().build(),
                glib::ParamSpecString::builder("tls-key").nick("TLS key").blurb("PEM private key file for tls-certificate").mutable_ready().build(),
                glib::ParamSpecString::builder("stun-server").nick("STUN server").blurb("stun://host:port, used for gathering and announced in a Link header").mutable_ready().build(),
                glib::ParamSpecString::builder("turn-server").nick("TURN server").blurb("turn(s)://user:password@host:port, used for gathering and announced in a Link header").mutable_ready().build(),
                glib::ParamSpecString::builder("public-address").nick("Public address").blurb("Comma-separated IP addresses announced as extra host candidates (a server behind NAT with forwarded UDP ports)").mutable_ready().build(),
                glib::ParamSpecString::builder("port-range").nick("Port range").blurb("UDP ports for ICE as MIN-MAX (e.g. 40000-40100); empty: any").mutable_ready().build(),
                glib::ParamSpecUInt::builder("latency").nick("Latency").blurb("Jitter buffer latency in ms").default_value(d.latency).mutable_ready().build(),
                glib::ParamSpecString::builder("video-codecs").nick("Video codecs").blurb("Video codecs accepted, most preferred first (see codec-order)").default_value(Some(d.video_codecs.as_str())).mutable_ready().build(),
                glib::ParamSpecString::builder("audio-codecs").nick("Audio codecs").blurb("Audio codecs accepted, most preferred first").default_value(Some(d.audio_codecs.as_str())).mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("output", d.output).nick("Output").blurb("What the pads carry").mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("simulcast", d.simulcast).nick("Simulcast").blurb("A publisher sending simulcast layers (OBS 32.1+, browsers): which layer(s) leave on the pads; with all, video_<n> carries the n-th layer of the offer's a=simulcast list (session-started's layers names each pad's rid)").mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("codec-order", d.codec_order).nick("Codec order").blurb("Whose order picks the codec of a media section among those video-codecs/audio-codecs take: the publisher's offer (it knows its encoders) or ours").mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("on-disconnect", d.on_disconnect).nick("On disconnect").blurb("When the publisher leaves: push EOS, or wait for the next publisher").mutable_ready().build(),
                glib::ParamSpecBoolean::builder("publish-page").nick("Publish page").blurb("Serve a browser publish page at / (camera, codec, stream and token; it POSTs to /whip/<stream>)").default_value(d.publish_page).mutable_ready().build(),
                glib::ParamSpecBoolean::builder("replace-publisher").nick("Replace publisher").blurb("A new POST to a busy stream replaces the running session (as OBS reconnects); false: 409").default_value(d.replace_publisher).mutable_ready().build(),
                glib::ParamSpecUInt::builder("max-sessions").nick("Max sessions").blurb("Most sessions at once on this address and port (the smallest of the sharing elements' values); over it: 503. 0: no limit").default_value(d.max_sessions).mutable_ready().build(),
                glib::ParamSpecUInt::builder("timeout").nick("Timeout").blurb("End a session that sent no media for this many seconds (0: never)").default_value(d.timeout).mutable_ready().build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats").nick("Statistics").blurb("sessions-started, sessions-ended and, while a publisher is live, a session structure (id, remote-address, user-agent, duration, bitrate, packets-received, bytes-received, packets-lost, nack-count, pli-count, fir-count, keyframes, keyframe-requests)").read_only().build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                // id, remote address, user agent, streams (pad -> codec). The element message
                // whipserversrc-session-started also has `layers` (pad -> simulcast layer).
                glib::subclass::Signal::builder("session-started")
                    .param_types([String::static_type(), String::static_type(), String::static_type(), gst::Structure::static_type()])
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
        let mut s = self.settings.lock().unwrap();
        let string = || value.get::<Option<String>>().unwrap();
        match pspec.name() {
            "address" => s.address = string().unwrap_or_else(|| Settings::default().address),
            "port" => s.port = value.get().unwrap(),
            "stream" => s.stream = string().unwrap_or_else(|| Settings::default().stream),
            "token" => s.token = string(),
            "tls-certificate" => s.tls_certificate = string(),
            "tls-key" => s.tls_key = string(),
            "stun-server" => s.stun_server = string(),
            "turn-server" => s.turn_server = string(),
            "public-address" => s.public_address = string(),
            "port-range" => s.port_range = string(),
            "latency" => s.latency = value.get().unwrap(),
            "video-codecs" => s.video_codecs = string().unwrap_or_default(),
            "audio-codecs" => s.audio_codecs = string().unwrap_or_default(),
            "output" => s.output = value.get().unwrap(),
            "simulcast" => s.simulcast = value.get().unwrap(),
            "codec-order" => s.codec_order = value.get().unwrap(),
            "on-disconnect" => s.on_disconnect = value.get().unwrap(),
            "replace-publisher" => s.replace_publisher = value.get().unwrap(),
            "publish-page" => s.publish_page = value.get().unwrap(),
            "max-sessions" => s.max_sessions = value.get().unwrap(),
            "timeout" => s.timeout = value.get().unwrap(),
            _ => unreachable!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "address" => s.address.to_value(),
            "port" => s.port.to_value(),
            "stream" => s.stream.to_value(),
            "token" => s.token.to_value(),
            "tls-certificate" => s.tls_certificate.to_value(),
            "tls-key" => s.tls_key.to_value(),
            "stun-server" => s.stun_server.to_value(),
            "turn-server" => s.turn_server.to_value(),
            "public-address" => s.public_address.to_value(),
            "port-range" => s.port_range.to_value(),
            "latency" => s.latency.to_value(),
            "video-codecs" => s.video_codecs.to_value(),
            "audio-codecs" => s.audio_codecs.to_value(),
            "output" => s.output.to_value(),
            "simulcast" => s.simulcast.to_value(),
            "codec-order" => s.codec_order.to_value(),
            "on-disconnect" => s.on_disconnect.to_value(),
            "replace-publisher" => s.replace_publisher.to_value(),
            "publish-page" => s.publish_page.to_value(),
            "max-sessions" => s.max_sessions.to_value(),
            "timeout" => s.timeout.to_value(),
            _ => unreachable!(),
        }
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
            ["video_%u", "audio_%u"]
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
            let (ending, session) = {
                let mut state = self.state.lock().unwrap();
                (state.sessions.end_stream("EOS sent to the element"), state.session.take())
            };
            if let (Some(ending), Some(session)) = (ending, session) {
                self.finish_session(session, &ending);
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
