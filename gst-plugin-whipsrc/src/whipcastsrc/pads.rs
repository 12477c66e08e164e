//! The element's pads: which pads a session feeds and with what (names, codecs, the caps the
//! SDP alone says), and the persistent pads that every session feeds in turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::Output;
use super::imp::{CAT, WhipServerSrc};
use crate::sdp::{self, Codec, MediaKind, MediaPlan};
use crate::simulcast::Choice;

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
    pub(super) fn push(&self, sample: &gst::Sample, element: &glib::WeakRef<super::WhipServerSrc>) {
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

impl WhipServerSrc {
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
