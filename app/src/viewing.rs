//! What viewers get (WHEP, on the WHIP port and its server): per stream, `/whep/<stream>/source`
//! is the publisher's own streams as they arrive (no re-encoding: the recorded layer), and
//! `/whep/<stream>` facemark's annotated video, H.264 encoded only while someone watches, with
//! the publisher's audio.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gst::prelude::*;

use crate::args::ServeArgs;

/// The whipcastwhepsink serving the publisher's own streams of `stream`.
pub fn source_name(stream: &str) -> String {
    format!("whep-{stream}-source")
}

/// The whipcastwhepsink serving the annotated video of `stream`.
pub fn processed_name(stream: &str) -> String {
    format!("whep-{stream}")
}

/// The tee splitting a whipcastsrc pad between recordings and the source view.
fn split_name(src: &gst::Element, pad: &gst::Pad) -> String {
    format!("split-{}-{}", src.name(), pad.name())
}

/// The encoders of the annotated view, best first (NVIDIA's where a GPU with NVENC is there,
/// which the H200 is not: untried here), each constrained baseline: every browser decodes it.
pub const PROCESSED_ENCODERS: [&str; 2] = [
    "nvh264enc preset=low-latency-hq zerolatency=true gop-size=60 bframes=0 \
     ! capsfilter caps=video/x-h264,profile=constrained-baseline",
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bframes=0 \
     ! capsfilter caps=video/x-h264,profile=constrained-baseline",
];

/// Adds the WHEP endpoints of `stream` to `pipeline`: the source view, and the annotated view
/// when facemark runs.
pub fn add_endpoints(pipeline: &gst::Pipeline, args: &ServeArgs, stream: &str, annotated: bool) -> Result<(), String> {
    let mut endpoints = vec![(source_name(stream), format!("{stream}/source"))];
    if annotated {
        endpoints.push((processed_name(stream), stream.to_owned()));
    }
    for (name, path) in endpoints {
        let sink = gst::ElementFactory::make("whipcastwhepsink")
            .name(name.as_str())
            .property("stream", path.as_str())
            .property("token", args.viewer_token_for(stream).unwrap_or_default())
            .build()
            .map_err(|_| "whipcastwhepsink is missing".to_string())?;
        args.set_endpoint_properties(&sink);
        pipeline.add(&sink).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A queue that never holds its input back: the oldest goes when a viewer's side lags.
fn leaky_queue() -> Result<gst::Element, String> {
    gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", gst::ClockTime::SECOND.nseconds())
        .property_from_str("leaky", "downstream")
        .build()
        .map_err(|_| "queue is missing".to_string())
}

/// A new pad of `src` (whipcastsrc of `stream`): the recorded video and the audio are split by
/// a tee (recordings take branches of it, see [`feed`]) and go on to the source view; the audio
/// also to the annotated view.
pub fn split(pipeline: &gst::Pipeline, src: &gst::Element, pad: &gst::Pad, stream: &str) -> Result<(), String> {
    let name = pad.name();
    let kind = match name.as_str() {
        "video_0" => "video",
        n if n.starts_with("audio_") => "audio",
        _ => return Ok(()),
    };
    let mut viewers: Vec<gst::Element> = pipeline.by_name(&source_name(stream)).into_iter().collect();
    if kind == "audio" {
        viewers.extend(pipeline.by_name(&processed_name(stream)));
    }
    if viewers.is_empty() {
        return Ok(());
    }
    let tee = gst::ElementFactory::make("tee")
        .name(split_name(src, pad))
        .property("allow-not-linked", true)
        .build()
        .map_err(|_| "tee is missing".to_string())?;
    pipeline.add(&tee).map_err(|e| e.to_string())?;
    for viewer in viewers {
        let queue = leaky_queue()?;
        pipeline.add(&queue).map_err(|e| e.to_string())?;
        tee.link(&queue).map_err(|e| e.to_string())?;
        let sink = viewer
            .request_pad_simple(&format!("{kind}_%u"))
            .ok_or_else(|| format!("{} takes no more {kind}", viewer.name()))?;
        queue.static_pad("src").and_then(|p| p.link(&sink).ok()).ok_or("cannot link to the viewers")?;
        queue.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    tee.sync_state_with_parent().map_err(|e| e.to_string())?;
    let input = tee.static_pad("sink").ok_or("tee without a sink pad")?;
    pad.link(&input).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// The pad a recording takes `pad` (of whipcastsrc `src`) from: a new branch of its tee, or the
/// pad itself where it is not split.
pub fn feed(pipeline: &gst::Pipeline, src: &gst::Element, pad: &gst::Pad) -> Option<gst::Pad> {
    match pipeline.by_name(&split_name(src, pad)) {
        Some(tee) => tee.request_pad_simple("src_%u"),
        None => Some(pad.clone()),
    }
}

/// Detaches a recording's input `sink_pad` from what feeds it, giving a tee branch back.
pub fn unfeed(sink_pad: &gst::Pad) {
    let Some(peer) = sink_pad.peer() else { return };
    let _ = peer.unlink(sink_pad);
    if let Some(tee) = peer.parent_element().filter(|e| e.factory().is_some_and(|f| f.name() == "tee")) {
        tee.release_request_pad(&peer);
    }
}

/// Whether someone watches the annotated view of a stream: its encoder works only then.
#[derive(Clone, Default)]
pub struct Watched(Arc<AtomicBool>);

impl Watched {
    /// Follows the viewers of `processed` (a whipcastwhepsink).
    pub fn follow(processed: &gst::Element) -> Watched {
        let watched = Watched::default();
        for signal in ["viewer-added", "viewer-removed"] {
            let flag = watched.0.clone();
            processed.connect(signal, false, move |values| {
                let element = values.first().and_then(|v| v.get::<gst::Element>().ok())?;
                let stats = element.property::<gst::Structure>("stats");
                let viewers = stats.get::<gst::Array>("viewers").map(|a| a.len()).unwrap_or(0);
                flag.store(viewers > 0, Ordering::Relaxed);
                None
            });
        }
        watched
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The annotated view's branch inside a recording: `tee` (after facemark) ! leaky queue !
/// videoconvert ! H.264, on a src ghost pad `processed` of `bin`, frames let through only while
/// `watched`; the ghost pad passes no EOS (the view outlives the session).
pub fn add_processed_branch(bin: &gst::Bin, tee: &gst::Element, watched: Watched) -> Result<gst::GhostPad, String> {
    // The first encoder present that can be made (a factory without its device fails here).
    let mut failures = Vec::new();
    let chain = PROCESSED_ENCODERS
        .iter()
        .filter(|description| description.split(' ').next().is_some_and(|f| gst::ElementFactory::find(f).is_some()))
        .find_map(|encoder| {
            let description = format!(
                "queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 name=processed-queue \
                 ! videoconvert ! {encoder}"
            );
            gst::parse::bin_from_description(&description, true).map_err(|e| failures.push(e.to_string())).ok()
        })
        .ok_or_else(|| {
            format!("the annotated view has no H.264 encoder (x264enc: gstreamer1.0-plugins-ugly) {failures:?}")
        })?;
    bin.add(&chain).map_err(|e| e.to_string())?;
    tee.link(&chain).map_err(|e| e.to_string())?;
    let src = chain.static_pad("src").ok_or("no src pad on the annotated view's encoder")?;
    // Frames go until the encoder has put one out (x264enc holds one back): the view learns its
    // caps, which a viewer's answer needs. Then they go while someone watches, the first of
    // them asked to be a key frame.
    let primed = Arc::new(AtomicBool::new(false));
    {
        let primed = primed.clone();
        src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            primed.store(true, Ordering::Relaxed);
            gst::PadProbeReturn::Remove
        });
    }
    if let Some(queue) = chain.by_name("processed-queue").and_then(|q| q.static_pad("src")) {
        let passing = AtomicBool::new(true);
        queue.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if !primed.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            if watched.get() {
                if !passing.swap(true, Ordering::Relaxed) {
                    let event = gst_video::DownstreamForceKeyUnitEvent::builder().all_headers(true).build();
                    let _ = pad.push_event(event);
                }
                return gst::PadProbeReturn::Ok;
            }
            passing.store(false, Ordering::Relaxed);
            // Taken and Handled, not Drop (GStreamer 1.22 would unref the emptied buffer).
            info.data.take();
            gst::PadProbeReturn::Handled
        });
    }
    let ghost = gst::GhostPad::builder_with_target(&src).map_err(|e| e.to_string())?.name("processed").build();
    ghost.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        if matches!(&info.data, Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos) {
            info.data.take();
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
    bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    Ok(ghost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotated_views_branch_is_made_and_passes_no_eos() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        let tee = gst::ElementFactory::make("tee").build().unwrap();
        bin.add(&tee).unwrap();
        let pad = add_processed_branch(&bin, &tee, Watched::default()).unwrap();
        assert_eq!(pad.name(), "processed");
        let caps = pad.query_caps(None);
        assert!(caps.iter().all(|s| s.name() == "video/x-h264"), "{caps}");
        assert!(!Watched::default().get());
    }

    #[test]
    fn names_follow_the_stream() {
        assert_eq!(source_name("cam"), "whep-cam-source");
        assert_eq!(processed_name("cam"), "whep-cam");
    }
}
