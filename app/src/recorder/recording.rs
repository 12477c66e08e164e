//! A session's recording bin: its inputs, the muxer for the video codec, the crash-safe file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;

use super::face_branch::{FaceAdded, FaceBranch, FaceInput, FaceSinks};
use super::queues::{INPUT_PREFIX, live_queue};
use super::{Inner, Recording, make, receiving, sink_done};
use crate::analysis;
use crate::naming::{container_for, recording_base, unique_name};
use crate::tracks::Gates;

/// MP4 fragment length: what a crash can cost at most (MediaMTX writes 1 s parts too).
const MP4_FRAGMENT_MS: u32 = 1000;

impl Inner {
    pub(super) fn build_recording(
        self: &Arc<Self>,
        src: &gst::Element,
        stream: &str,
        streams: &gst::Structure,
    ) -> Result<Recording, String> {
        let video_codec =
            streams.iter().find(|(name, _)| name.starts_with("video_")).and_then(|(_, v)| v.get::<String>().ok());
        let (extension, muxer) = container_for(video_codec.as_deref());
        let now = glib::DateTime::now_utc().map_err(|e| format!("the time: {e}"))?;
        let name = unique_name(&self.args.recordings, &recording_base(stream, &now), extension);
        let file = self.args.recordings.join(format!("{name}.{extension}"));

        let bin = gst::Bin::with_name(&format!("recording-{name}"));
        let mux = make(muxer)?;
        // The server's running time goes on across sessions; each file starts at zero: the
        // streams' pads to the muxer are offset by the session's first buffer (tracks.rs), which
        // mp4mux's offset-to-zero did not always agree with (it starts with the streams it has).
        if mux.find_property("fragment-duration").is_some() {
            // MP4 in fragments: a crash costs at most the fragment being written; a clean stop
            // adds the duration and the fragment index (mfra).
            mux.set_property("fragment-duration", MP4_FRAGMENT_MS);
        }
        if extension == "webm" {
            mux.connect_pad_added(|_, pad| keep_first_size(pad));
        }
        // Whole fragments and Matroska elements, each written at once and fsynced.
        let whole = make("fragmentsync")?;
        let sink = gst::ElementFactory::make("filesink")
            .property("location", file.to_string_lossy().as_ref())
            .property("async", false)
            .build()
            .map_err(|_| "filesink is missing")?;
        bin.add_many([&mux, &whole, &sink]).map_err(|e| e.to_string())?;
        gst::Element::link_many([&mux, &whole, &sink]).map_err(|e| e.to_string())?;
        let mut sinks = vec![sink.clone()];

        let source = src.downgrade();
        let gates = Gates::new(&name, &bin, &mux, move || receiving(source.upgrade().as_ref()));
        let frames = Arc::new(AtomicU64::new(0));
        let media = Arc::new(AtomicU64::new(0));
        let snapshots = Arc::new(AtomicU64::new(0));
        let mut inputs = Vec::new();
        let mut described = Vec::new();
        let mut snapshot_dir = None;
        let (mut face, mut face_sink) = (None::<FaceBranch>, None::<gst::Element>);
        // The stream recorded as the file's video.
        let recorded_video = streams.iter().map(|(name, _)| name.to_string()).find(|n| n.starts_with("video_"));
        // A simulcast session with an analysis pad: facemark marks that layer, the file keeps video_0.
        let analysis_input = streams.iter().any(|(name, _)| name.starts_with("analysis_"));
        for (pad_name, codec) in streams.iter() {
            let codec = codec.get::<String>().map_err(|e| e.to_string())?;
            let video = pad_name.starts_with("video_");
            let queue = live_queue(false)?;
            // Stage names: a queue's streaming thread is named after it (`in-video_0:src`).
            queue.set_property("name", format!("{INPUT_PREFIX}{pad_name}"));
            bin.add(&queue).map_err(|e| e.to_string())?;
            let ghost = gst::GhostPad::builder_with_target(&queue.static_pad("sink").unwrap())
                .map_err(|e| e.to_string())?
                .name(pad_name.as_str())
                .build();
            bin.add_pad(&ghost).map_err(|e| e.to_string())?;
            inputs.push(pad_name.to_string());
            // An analysis layer only feeds facemark; every other stream goes to the muxer.
            let analysis = pad_name.starts_with("analysis_");
            let track = (!analysis).then_some(if video { "video" } else { "audio" });
            let marked_here =
                self.facemark.is_some() && snapshot_dir.is_none() && (analysis || (video && !analysis_input));
            let branch = FaceBranch::default();
            let added = if marked_here {
                let output = analysis::Output::new(
                    stream,
                    self.events.clone(),
                    &self.args.recordings.join(format!("{name}.landmarks.jsonl")),
                    {
                        // Where the file's video starts: the session's first buffer in WebM's
                        // one timeline; MP4's tracks each start at their own first sample.
                        let (gates, mp4) = (gates.clone(), extension == "mp4");
                        let video = recorded_video.clone();
                        move || match (mp4, &video) {
                            (true, Some(video)) => gates.first(video),
                            _ => gates.zero(),
                        }
                    },
                    self.analysis.clone(),
                );
                let watched = self.watched.lock().unwrap().get(stream).cloned();
                let sinks = FaceSinks { snapshots: &snapshots, watched };
                let input = FaceInput { queue: &queue, feeds_mux: track.is_some(), codec: &codec, name: &name };
                self.add_face_branch(&bin, input, sinks, &branch, output)
            } else {
                Err(String::new())
            };
            // What goes to the muxer, once the file's tracks are decided (tracks.rs).
            let mut mux_feed = None;
            match added {
                Ok(FaceAdded { dir, decoder, appsink, mux_feed: feed }) => {
                    mux_feed = feed;
                    described.push(match analysis {
                        true => format!("{codec} layer for facemark after {decoder}"),
                        false => format!("{codec} (facemark after {decoder})"),
                    });
                    snapshot_dir = Some(dir);
                    face_sink = Some(appsink.clone());
                    face = Some(branch);
                    sinks.push(appsink);
                }
                Err(e) => {
                    if marked_here {
                        println!("facemark is off for this session: {e}");
                    }
                    if !analysis {
                        described.push(codec.clone());
                    }
                    match track {
                        Some(_) => mux_feed = queue.static_pad("src"),
                        // Nobody marks this layer: its data goes nowhere.
                        None => {
                            let drop = make("fakesink")?;
                            drop.set_property("async", false);
                            bin.add(&drop).map_err(|e| e.to_string())?;
                            queue.link(&drop).map_err(|e| e.to_string())?;
                            sinks.push(drop);
                        }
                    }
                }
            }
            let (Some(track), Some(mux_feed)) = (track, mux_feed) else { continue };
            gates.hold(pad_name, track, &queue, &mux_feed);
            {
                let (frames, media) = (frames.clone(), media.clone());
                mux_feed.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if video {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    media.fetch_add(1, Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
        }
        if inputs.is_empty() {
            return Err("the session has no audio or video".into());
        }

        // Finalized when every sink has seen EOS.
        let pending = Arc::new(AtomicUsize::new(sinks.len()));
        for sink in &sinks {
            let (pending, weak, name) = (pending.clone(), Arc::downgrade(self), name.clone());
            // The face branch's sink counts once: at its EOS, or when the branch failed.
            let done = face.as_ref().filter(|_| face_sink.as_ref() == Some(sink)).map(|f| f.done.clone());
            sink.static_pad("sink").unwrap().add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if matches!(&info.data, Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos)
                    && !done.as_ref().is_some_and(|d| d.swap(true, Ordering::AcqRel))
                {
                    sink_done(&pending, &weak, &name);
                }
                gst::PadProbeReturn::Ok
            });
        }

        self.pipeline.add(&bin).map_err(|e| e.to_string())?;
        if bin.sync_state_with_parent().is_err() {
            let _ = bin.set_state(gst::State::Null);
            let _ = self.pipeline.remove(&bin);
            return Err("the recording does not start".into());
        }
        Ok(Recording {
            name,
            face,
            pending,
            src: src.clone(),
            bin,
            file,
            snapshot_dir,
            whole,
            gates,
            inputs,
            summary: described.join(" + "),
            frames,
            media,
            snapshots,
            started: Instant::now(),
        })
    }
}

/// Matroska in GStreamer 1.22 refuses new caps on a track (an error that ends the recording), yet
/// a publisher changes its size (a browser adapting to its CPU and bandwidth, a simulcast layer
/// switch). AV1, VP8 and VP9 say their size in the stream itself (sequence header, key frame
/// header), where players read it: the muxer keeps the caps it started with.
fn keep_first_size(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |pad, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else { return gst::PadProbeReturn::Ok };
        let gst::EventView::Caps(new) = event.view() else { return gst::PadProbeReturn::Ok };
        let Some(current) = pad.current_caps() else { return gst::PadProbeReturn::Ok };
        let (Some(old), Some(new)) = (current.structure(0), new.caps().structure(0)) else {
            return gst::PadProbeReturn::Ok;
        };
        let in_band = ["video/x-av1", "video/x-vp8", "video/x-vp9"].contains(&new.name().as_str());
        if !in_band || old.name() != new.name() || old == new {
            return gst::PadProbeReturn::Ok;
        }
        if let (Ok(w), Ok(h)) = (new.get::<i32>("width"), new.get::<i32>("height")) {
            gst::info!(gst::CAT_DEFAULT, obj = pad, "the stream is now {w}x{h}: recorded in-band");
        }
        // Taken and Handled, not Drop: on Drop GStreamer 1.22 unrefs the emptied event.
        info.data.take();
        gst::PadProbeReturn::Handled
    });
}
