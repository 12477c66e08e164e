//! Simulcast layers: a stream's rid read from its RTP header extension, and each layer's
//! samples routed to the pads the section's selector says, with key frames asked of the layer
//! an output waits to switch to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, WhipServerSrc};
use super::pads::{OutputPad, analysis_pad_name, pad_prefix};
use crate::sdp::MediaKind;
use crate::simulcast::{ItemInfo, LayerSelector};

/// With `simulcast=best|lowest`, how long after the first frame a layer that has not said its
/// size yet may keep the choice waiting.
pub(super) const LAYER_CHOICE_WINDOW: Duration = Duration::from_millis(1000);

/// The simulcast layers of one media section: which leaves on which pad.
pub(super) struct LayeredSection {
    pub(super) selector: Mutex<LayerSelector<gst::Sample>>,
    /// Each layer's chain (its appsink's sink pad), where a pad's key-frame requests go.
    pub(super) chains: Mutex<HashMap<String, gst::Pad>>,
    /// The element's pads fed, by output index (found once).
    pub(super) pads: Mutex<HashMap<usize, OutputPad>>,
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
}
