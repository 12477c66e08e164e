//! A session's streams out of the element: the chain after webrtcbin for each stream
//! (depayloader, parser, decoder as `output` asks), simulcast layers told apart and routed by the
//! selector, and the element's persistent pads that every session feeds in turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::Output;
use super::imp::{CAT, WhipServerSrc};
use crate::rtptime::RtpTimeline;
use crate::sdp::{self, Codec, MediaKind, MediaPlan};
use crate::simulcast::{Choice, ItemInfo, LayerSelector};

/// With `simulcast=best|lowest`, how long after the first frame a layer that has not said its
/// size yet may keep the choice waiting.
pub(super) const LAYER_CHOICE_WINDOW: Duration = Duration::from_millis(1000);
/// A persistent source pad of the element, fed by whichever session is current.
#[derive(Clone)]
pub(super) struct OutputPad {
    pub(super) appsrc: gst_app::AppSrc,
    pub(super) ghost: gst::GhostPad,
    /// Where keyframe requests go: the sink of the current session's chain for this pad.
    pub(super) upstream: Arc<Mutex<Option<gst::Pad>>>,
    pub(super) warned_unlinked: Arc<AtomicBool>,
    /// The current session has sent data for this pad.
    pub(super) fed: Arc<AtomicBool>,
    /// Ended (EOS) for a stream that stayed silent: later data is dropped (warned once).
    pub(super) given_up: Arc<AtomicBool>,
}

impl OutputPad {
    /// Hands a session's sample to the pad: dropped (with one warning) while nobody links the
    /// pad, so that it never stops the pipeline (not-linked); never blocks the session's thread.
    fn push(&self, sample: &gst::Sample, element: &glib::WeakRef<super::WhipServerSrc>) {
        // A load first: the swap, a write, happens once per session rather than per sample.
        if !self.fed.load(Ordering::Relaxed)
            && !self.fed.swap(true, Ordering::Relaxed)
            && self.given_up.load(Ordering::Relaxed)
            && let Some(element) = element.upgrade()
        {
            gst::warning!(CAT, obj = element, "{} ended while silent: its data is dropped", self.ghost.name());
        }
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
pub(super) struct LayeredSection {
    pub(super) selector: Mutex<LayerSelector<gst::Sample>>,
    /// Each layer's chain (its appsink's sink pad), where a pad's key-frame requests go.
    pub(super) chains: Mutex<HashMap<String, gst::Pad>>,
    /// The element's pads fed, by output index (found once).
    pub(super) pads: Mutex<HashMap<usize, OutputPad>>,
}

/// The elements that turn a session's RTP into what `output` asks for.
pub(super) fn chain_for(output: Output, encoding: &str) -> Result<Vec<&'static str>, String> {
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

pub(super) fn pad_prefix(kind: MediaKind) -> &'static str {
    if kind == MediaKind::Video { "video" } else { "audio" }
}

/// How many pads a media section feeds: one, or one per simulcast layer with `simulcast=all`.
pub(super) fn pads_of(plan: &MediaPlan, choice: Choice) -> usize {
    if choice == Choice::All { plan.rids.len().max(1) } else { 1 }
}

/// The number in the pad name (`video_<n>`) of the first pad of media section `mline`.
pub(super) fn pad_index(plans: &[MediaPlan], mline: usize, kind: MediaKind, choice: Choice) -> usize {
    plans[..mline.min(plans.len())]
        .iter()
        .filter(|p| p.kind == kind && p.codec.is_some())
        .map(|p| pads_of(p, choice))
        .sum()
}

/// The analysis pad of a simulcast section whose first video pad is `video_<first>`.
pub(super) fn analysis_pad_name(first: usize) -> String {
    format!("analysis_{first}")
}

/// A pad of the element that a session feeds.
pub(super) struct SessionPad<'a> {
    pub(super) name: String,
    pub(super) kind: MediaKind,
    pub(super) codec: &'a Codec,
    /// For a pad fed by simulcast: its rid (`simulcast=all`), `best`, `lowest` or `analysis`.
    pub(super) layer: Option<&'a str>,
}

/// The pads a session with media sections `plans` feeds. With `analysis` (analysis-min-height
/// set), each simulcast section also feeds `analysis_<n>` unless every layer has its own pad.
pub(super) fn session_pads(plans: &[MediaPlan], choice: Choice, analysis: bool) -> Vec<SessionPad<'_>> {
    let mut pads = Vec::new();
    for (mline, plan) in plans.iter().enumerate() {
        let Some(codec) = plan.codec.as_ref().filter(|_| plan.kind != MediaKind::Other) else { continue };
        let first = pad_index(plans, mline, plan.kind, choice);
        for k in 0..pads_of(plan, choice) {
            let layer = match choice {
                _ if plan.rids.is_empty() => None,
                Choice::All => Some(plan.rids[k].as_str()),
                Choice::Best => Some("best"),
                Choice::Lowest => Some("lowest"),
            };
            pads.push(SessionPad {
                name: format!("{}_{}", pad_prefix(plan.kind), first + k),
                kind: plan.kind,
                codec,
                layer,
            });
        }
        if analysis && choice != Choice::All && !plan.rids.is_empty() {
            pads.push(SessionPad { name: analysis_pad_name(first), kind: plan.kind, codec, layer: Some("analysis") });
        }
    }
    pads
}

/// `streams, video_0=(string)AV1, audio_0=(string)OPUS`: the pads a session will feed and their
/// codecs; and `layers, video_0=(string)best`: for each pad fed by simulcast, its rid
/// (`simulcast=all`), or `best`/`lowest` (the choice is announced once made).
pub(super) fn stream_codecs(pads: &[SessionPad]) -> (gst::Structure, gst::Structure) {
    let mut streams = gst::Structure::builder("streams");
    let mut layers = gst::Structure::builder("layers");
    for pad in pads {
        streams = streams.field(&pad.name, pad.codec.name.as_str());
        if let Some(layer) = pad.layer {
            layers = layers.field(&pad.name, layer);
        }
    }
    (streams.build(), layers.build())
}

/// The caps a pad will carry where the SDP alone says them: Opus out of `rtpopusdepay !
/// opusparse`, whose caps follow from the offer (the first sample's add the OpusHead). Set when
/// the session starts, they let a muxer write a valid (empty) track for a stream negotiated and
/// never sent: mp4mux writes a track without a sample description for a pad without caps.
pub(super) fn caps_from_sdp(codec: &Codec, output: Output) -> Option<gst::Caps> {
    if output != Output::Encoded || codec.name != "OPUS" {
        return None;
    }
    let (channels, rate) = sdp::opus_format(codec.fmtp.as_deref());
    Some(
        gst::Caps::builder("audio/x-opus")
            .field("channel-mapping-family", 0i32)
            .field("channels", i32::from(channels))
            .field("rate", rate as i32)
            .build(),
    )
}

/// What every pad of a session's webrtcbin is linked with.
pub(super) struct PadContext {
    pub(super) plans: Vec<MediaPlan>,
    pub(super) output: Output,
    pub(super) choice: Choice,
    pub(super) started: Instant,
    pub(super) last_media_ms: Arc<AtomicU64>,
    pub(super) first_media_ms: Arc<AtomicU64>,
    pub(super) received_ms: Arc<AtomicU64>,
    pub(super) keyframes: Arc<AtomicU64>,
    pub(super) used_names: Mutex<Vec<String>>,
    /// The simulcast sections, by media line.
    pub(super) layered: HashMap<usize, Arc<LayeredSection>>,
    /// The rid of each simulcast stream's SSRC, once seen (for per-layer stats).
    pub(super) layer_ssrcs: Arc<Mutex<HashMap<u32, String>>>,
    /// The pads whose RTP is arriving (stats' `receiving`).
    pub(super) receiving: Arc<Mutex<Vec<String>>>,
}

/// `sample` with its buffer's times moved by `shift` ns (a simulcast layer switched to, on the
/// output's clock).
fn shifted(sample: gst::Sample, shift: i64) -> gst::Sample {
    let Some(buffer) = sample.buffer_owned().filter(|_| shift != 0) else { return sample };
    let mut buffer = buffer;
    let moved = |t: Option<gst::ClockTime>| {
        t.map(|t| gst::ClockTime::from_nseconds((t.nseconds() as i64).saturating_add(shift).max(0) as u64))
    };
    {
        let b = buffer.make_mut();
        let (pts, dts) = (moved(b.pts()), moved(b.dts()));
        b.set_pts(pts);
        b.set_dts(dts);
    }
    let caps = sample.caps_owned();
    let mut builder = gst::Sample::builder().buffer(&buffer);
    if let Some(caps) = &caps {
        builder = builder.caps(caps);
    }
    if let Some(segment) = sample.segment() {
        builder = builder.segment(segment);
    }
    builder.build()
}

/// The rid in an RTP packet's RID header extension `id` (one- or two-byte form, RFC 8285).
pub(super) fn rtp_stream_id(buffer: &gst::BufferRef, id: u8) -> Option<String> {
    let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buffer).ok()?;
    let value = rtp.extension_onebyte_header(id, 0).or_else(|| rtp.extension_twobytes_header(id, 0).map(|(_, v)| v))?;
    let text = std::str::from_utf8(value).ok()?.trim_end_matches('\0');
    (!text.is_empty()).then(|| text.to_owned())
}

impl WhipServerSrc {
    pub(super) fn link_session_pad(
        &self,
        webrtcbin: &gst::Element,
        pad: &gst::Pad,
        context: &PadContext,
    ) -> Result<(), String> {
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
        // The media section: the transceiver's, where it is one of this kind and payload type.
        // webrtcbin 1.22 may give a stream whose SSRC the offer did not declare (OBS's simulcast
        // layers) no transceiver, or the first one (audio): then the section of its kind and PT.
        let payload = s.get::<i32>("payload").ok().and_then(|pt| u8::try_from(pt).ok());
        let plans = &context.plans;
        let matches = |i: usize| {
            plans
                .get(i)
                .is_some_and(|p| p.kind == kind && p.codec.as_ref().is_some_and(|c| Some(c.payload_type) == payload))
        };
        let by_transceiver =
            pad.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver").map(|t| t.mlineindex() as usize);
        let mline = by_transceiver
            .filter(|&i| matches(i))
            .or_else(|| (0..plans.len()).find(|&i| matches(i)))
            .or(by_transceiver)
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
                let (rid, ssrcs) = (rid.clone(), context.layer_ssrcs.clone());
                let ssrc = s.get::<u32>("ssrc").ok();
                pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                    if rid.get().is_none()
                        && let Some(buffer) = info.buffer()
                        && let Some(value) = rtp_stream_id(buffer, extension)
                    {
                        gst::info!(CAT, obj = pad, "RTP stream {value:?} (SSRC {ssrc:?})");
                        if let Some(ssrc) = ssrc {
                            ssrcs.lock().unwrap().insert(ssrc, value.clone());
                        }
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
        let (started, received) = (context.started, context.received_ms.clone());
        // The element's pads this stream feeds: a simulcast section's stream may feed any of its.
        let feeds: Vec<String> = match &layered {
            None => vec![name.clone()],
            Some(section) => {
                let selector = section.selector.lock().unwrap();
                let mut names: Vec<String> =
                    (0..selector.outputs()).map(|k| format!("{prefix}_{}", first + k)).collect();
                names.extend(selector.analysis_output().map(|_| analysis_pad_name(first)));
                names
            }
        };
        let (receiving, announced) = (context.receiving.clone(), AtomicBool::new(false));
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            received.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            if !announced.swap(true, Ordering::Relaxed) {
                let mut receiving = receiving.lock().unwrap();
                for name in &feeds {
                    if !receiving.contains(name) {
                        receiving.push(name.clone());
                    }
                }
            }
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
        let first_media = context.first_media_ms.clone();
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
                let (warned, registered) = (AtomicBool::new(false), AtomicBool::new(false));
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
                    if !registered.swap(true, Ordering::Relaxed) {
                        section.chains.lock().unwrap().insert(rid.clone(), upstream.clone());
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
                    let now = started.elapsed().as_millis() as u64;
                    last.store(now, Ordering::Relaxed);
                    first_media.fetch_min(now, Ordering::Relaxed);
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
    pub(super) fn deliver_layer(
        &self,
        section: &LayeredSection,
        rid: &str,
        sample: gst::Sample,
        first: usize,
        kind: MediaKind,
        now: Duration,
    ) {
        let size = sample.caps().and_then(|c| c.structure(0)).and_then(|s| {
            let (w, h) = (s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?);
            Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
        });
        let buffer = sample.buffer();
        let info = ItemInfo {
            bytes: buffer.map_or(0, |b| b.size()),
            pixels: size.map(|(w, h)| u64::from(w) * u64::from(h)),
            height: size.map(|(_, h)| h),
            key: buffer.is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT)),
            pts: buffer.and_then(|b| b.pts()).map(|t| Duration::from_nanos(t.nseconds())),
        };
        gst::log!(CAT, imp = self, "Simulcast: layer {rid:?} {size:?} key {} pts {:?}", info.key, info.pts);
        // Output k: video_<first + k>, or the analysis pad; each with the chain of the layer it
        // carries, where its key-frame requests go.
        // The selector stays locked until its items are pushed: each layer's chain delivers on a
        // thread of its own, and an output's items must leave in the order the selector gave.
        let mut selector = section.selector.lock().unwrap();
        let (out, analysis, switched, asked) = {
            let outputs = 1 + usize::from(selector.analysis_output().is_some());
            let before: Vec<Option<String>> =
                (0..outputs).map(|k| selector.rid_of_output(k).map(str::to_owned)).collect();
            let out = selector.push(rid, sample, info, now);
            let chains = section.chains.lock().unwrap();
            let out: Vec<(usize, gst::Sample, Option<gst::Pad>)> = out
                .into_iter()
                .map(|(k, sample)| {
                    let chain = selector.rid_of_output(k).and_then(|r| chains.get(r).cloned());
                    (k, shifted(sample, selector.shift(k)), chain)
                })
                .collect();
            let switched: Vec<(usize, String)> = (0..outputs)
                .filter_map(|k| Some((k, selector.rid_of_output(k)?.to_owned())))
                .filter(|(k, rid)| before[*k].as_ref() != Some(rid))
                .collect();
            let asked: Vec<gst::Pad> =
                selector.key_frame_requests().iter().filter_map(|r| chains.get(r).cloned()).collect();
            (out, selector.analysis_output(), switched, asked)
        };
        let element = self.obj().downgrade();
        let pad_name = |k: usize| {
            if Some(k) == analysis { analysis_pad_name(first) } else { format!("{}_{}", pad_prefix(kind), first + k) }
        };
        for (k, sample, chain) in out {
            // The element's pad for output k, looked up once per session.
            let pad = section.pads.lock().unwrap().get(&k).cloned();
            let pad = match pad {
                Some(pad) => pad,
                None => {
                    let Ok(pad) = self.output_pad(&pad_name(k), kind) else { continue };
                    section.pads.lock().unwrap().insert(k, pad.clone());
                    pad
                }
            };
            {
                let mut upstream = pad.upstream.lock().unwrap();
                if *upstream != chain {
                    *upstream = chain;
                }
            }
            pad.push(&sample, &element);
        }
        drop(selector);
        // A layer an output waits to switch to: a key frame asked of it (PLI).
        for chain in asked {
            gst::debug!(CAT, imp = self, "Simulcast: key frame asked of the layer on {}", chain.name());
            if chain.push_event(gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(false).build()) {
                self.count_keyframe_request();
            }
        }
        let obj = self.obj();
        for (k, rid) in switched {
            let name = pad_name(k);
            gst::info!(CAT, imp = self, "Simulcast: layer {rid:?} on {name}");
            let s =
                gst::Structure::builder("whipserversrc-layer-chosen").field("pad", &name).field("rid", &rid).build();
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
    }

    /// The element's persistent pad `name` (created on first use).
    pub(super) fn output_pad(&self, name: &str, kind: MediaKind) -> Result<OutputPad, String> {
        // No lock of the element's state is held while GStreamer calls out (element-added,
        // pad-added): a handler there that asks the element anything (its stats, from another
        // thread holding the application's own lock) would otherwise deadlock with it.
        let _making = self.making_outputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(out) = self.state.lock().unwrap().outputs.get(name) {
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
            .pad_template(match kind {
                _ if name.starts_with("analysis_") => "analysis_%u",
                MediaKind::Video => "video_%u",
                _ => "audio_%u",
            })
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
        let out = OutputPad {
            appsrc,
            ghost: ghost.clone(),
            upstream,
            warned_unlinked: Arc::default(),
            fed: Arc::default(),
            given_up: Arc::default(),
        };
        // Known before pad-added, whose handlers may look for it.
        self.state.lock().unwrap().outputs.insert(name.to_owned(), out.clone());
        if let Err(e) = obj.add_pad(&ghost) {
            self.state.lock().unwrap().outputs.remove(name);
            return Err(e.to_string());
        }
        Ok(out)
    }
}
