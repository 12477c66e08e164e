//! A session's streams out of the element: the chain after webrtcbin for each stream
//! (depayloader, parser, decoder as `output` asks), RTP times turned into the pads' times, and
//! each stream linked to the pad it feeds, or to the simulcast section's selector (`layers`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::Output;
use super::imp::{CAT, WhipServerSrc};
use super::layers::{LayeredSection, rtp_stream_id};
use super::pads::{analysis_pad_name, pad_index, pad_prefix};
use crate::rtptime::RtpTimeline;
use crate::sdp::{MediaKind, MediaPlan};
use crate::simulcast::Choice;

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
}
