//! A recording's decode-and-mark branch: decoder, facemark, snapshots and the annotated view,
//! behind leaky queues so it never holds the recording back; and the check at start.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::queues::{DECODING_QUEUE, MARKING_QUEUE, MUXING_QUEUE, live_queue};
use super::{FACE_PREFIX, Inner, make};
use crate::analysis;
use crate::args::ServeArgs;
use crate::decoders::{decoder_for, decoders_line, installed};
use crate::facemark_properties;
use crate::naming;
use crate::viewing::{self, Watched};

/// The decode-and-mark branch of a recording: it may fail (a decoder refusing a frame) without
/// ending the recording.
#[derive(Clone, Default)]
pub(super) struct FaceBranch {
    /// Failed: what reaches it is dropped, so the recording never sees its error.
    pub off: Arc<AtomicBool>,
    /// Its sink is done (EOS, or the branch failed): counted once towards finalizing.
    pub done: Arc<AtomicBool>,
}

/// Where a face branch's marked frames go: snapshots (counted), and the annotated view while
/// `watched`.
pub(super) struct FaceSinks<'a> {
    pub snapshots: &'a Arc<AtomicU64>,
    pub watched: Option<Watched>,
}

/// What a face branch takes: the `queue` a recording's video leaves (`feeds_mux`: it goes to the
/// muxer too), its `codec` and the recording's `name`.
pub(super) struct FaceInput<'a> {
    pub queue: &'a gst::Element,
    pub feeds_mux: bool,
    pub codec: &'a str,
    pub name: &'a str,
}

/// A face branch made: its snapshot folder, the decoder it runs, its last sink, and the pad that
/// feeds the muxer (when the video is recorded too).
pub(super) struct FaceAdded {
    pub dir: PathBuf,
    pub decoder: &'static str,
    pub appsink: gst::Element,
    pub mux_feed: Option<gst::Pad>,
}

/// Whether facemark can run here (its models load); says which decoders it would use. A
/// `--facemark-property` facemark does not take is an error.
pub(super) fn check_facemark(args: &ServeArgs) -> Result<Option<String>, String> {
    let probe = match make("facemark") {
        Ok(e) => e,
        Err(e) => {
            println!("facemark: off ({e})");
            return Ok(None);
        }
    };
    facemark_properties::apply(&probe, &args.facemark_properties)?;
    if let Some(dir) = &args.model_dir {
        probe.set_property("model-dir", dir.to_string_lossy().as_ref());
    }
    let ready = probe.set_state(gst::State::Ready);
    // What runs the models (this plugin's fused engine, or tract), known once they loaded.
    let runtime = probe.property::<gst::Structure>("stats").get::<String>("runtime").unwrap_or_default();
    let _ = probe.set_state(gst::State::Null);
    if ready.is_err() {
        println!("facemark: off (its models do not load: run `make models`, or pass --model-dir)");
        return Ok(None);
    }
    let decoders = decoders_line(&installed);
    Ok(Some(format!("on the decoded video ({decoders}; models: {runtime})")))
}

/// The parser a codec's decoder needs in front of it (WebRTC's H.264/H.265 come as NAL units).
pub(super) fn parser_for(codec: &str) -> Option<&'static str> {
    match codec {
        "H264" => Some("h264parse"),
        "H265" => Some("h265parse"),
        _ => None,
    }
}

/// The elements of a face branch for `codec` besides queues, facemark, tee and appsink.
pub(super) fn face_branch_factories(codec: &str) -> Vec<&'static str> {
    parser_for(codec).into_iter().chain(decoder_for(codec)).chain(["videoconvert", "jpegenc"]).collect()
}

impl Inner {
    /// queue ! tee, one branch to the muxer (`mux_pad`), the other decoded and marked, every Nth
    /// frame a JPEG; without `mux_pad` (a simulcast layer for analysis only) the queue feeds the
    /// decoder alone. The decoding side never holds the recording back (leaky queues).
    pub(super) fn add_face_branch(
        &self,
        bin: &gst::Bin,
        input: FaceInput<'_>,
        sinks: FaceSinks<'_>,
        branch: &FaceBranch,
        output: analysis::Output,
    ) -> Result<FaceAdded, String> {
        let FaceInput { queue, feeds_mux, codec, name } = input;
        let decoder = decoder_for(codec).ok_or_else(|| format!("no decoder for {codec} is installed"))?;
        let dir = self.args.recordings.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let to_decoder = live_queue(true)?;
        let mut chain = Vec::new();
        if let Some(parser) = parser_for(codec) {
            chain.push(make(parser)?);
        }
        let decode = make(decoder)?;
        if decode.find_property("max-errors").is_some() {
            // A frame lost to a full queue must not end the marking.
            decode.set_property("max-errors", -1i32);
        }
        chain.push(decode);
        let latest_frames = live_queue(true)?;
        latest_frames.set_property("max-size-buffers", 2u32);
        chain.push(latest_frames.clone());
        chain.push(make("videoconvert")?);
        let facemark = make("facemark")?;
        facemark_properties::apply(&facemark, &self.args.facemark_properties)?;
        if let Some(dir) = &self.args.model_dir {
            facemark.set_property("model-dir", dir.to_string_lossy().as_ref());
        }
        analysis::attach(&facemark, Arc::new(output));
        chain.push(facemark);
        // The marked frames also go to the annotated view (WHEP), when the stream has one.
        let to_view = match &sinks.watched {
            Some(_) => Some(make("tee")?),
            None => None,
        };
        chain.extend(to_view.clone());
        let to_jpeg = make("videoconvert")?;
        chain.push(to_jpeg.clone());
        chain.push(make("jpegenc")?);
        let appsink = gst_app::AppSink::builder().sync(false).async_(false).build();
        chain.push(appsink.clone().upcast());

        chain.insert(0, to_decoder.clone());
        for (i, element) in chain.iter().enumerate() {
            element.set_property(
                "name",
                format!("{FACE_PREFIX}{i}-{}", element.factory().map(|f| f.name()).unwrap_or_default()),
            );
        }
        chain.remove(0);
        // The two threads of the branch, named for what they run (GStreamer names a queue's
        // thread `<queue>:src`): the parser and decoder, then conversion, facemark, snapshots.
        to_decoder.set_property("name", DECODING_QUEUE);
        latest_frames.set_property("name", MARKING_QUEUE);
        bin.add(&to_decoder).map_err(|e| e.to_string())?;
        bin.add_many(&chain).map_err(|e| e.to_string())?;
        let mux_feed = if feeds_mux {
            // The recorded stream, split: one copy to the muxer, one to the decoder.
            let tee = make("tee")?;
            let to_mux = live_queue(false)?;
            to_mux.set_property("name", MUXING_QUEUE);
            bin.add_many([&tee, &to_mux]).map_err(|e| e.to_string())?;
            queue.link(&tee).map_err(|e| e.to_string())?;
            gst::Element::link_many([&tee, &to_mux]).map_err(|e| e.to_string())?;
            tee.link(&to_decoder).map_err(|e| e.to_string())?;
            to_mux.static_pad("src")
        } else {
            // A stream of its own (a simulcast layer for analysis): all of it to the decoder.
            queue.link(&to_decoder).map_err(|e| e.to_string())?;
            None
        };
        to_decoder.link(&chain[0]).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| e.to_string())?;
        if let (Some(tee), Some(watched)) = (&to_view, sinks.watched)
            && let Err(e) = viewing::add_processed_branch(bin, tee, watched)
        {
            // The marking and the snapshots go on without it.
            println!("the annotated view of {name} is off: {e}");
        }
        {
            // A failed branch takes nothing more: its error must not flow back into the tee.
            let off = branch.off.clone();
            to_decoder.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if off.load(Ordering::Acquire) {
                    info.data.take();
                    return gst::PadProbeReturn::Handled;
                }
                gst::PadProbeReturn::Ok
            });
        }
        {
            // The leaky queue drops frames when marking lags (marking DISCONT what follows): the
            // decoder then gets nothing until the next key frame, never a frame whose reference
            // was dropped (libaom's av1dec fails on those).
            // It asks for that key frame (a browser sends one on request, else only every few
            // minutes: without asking, the marking stopped at its first drop for good).
            let waiting = AtomicBool::new(false);
            to_decoder.static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let Some(buffer) = info.buffer() else { return gst::PadProbeReturn::Ok };
                let delta = buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                if buffer.flags().contains(gst::BufferFlags::DISCONT) && delta {
                    if !waiting.swap(true, Ordering::Relaxed) {
                        let _ =
                            pad.send_event(gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build());
                    }
                } else if !delta {
                    waiting.store(false, Ordering::Relaxed);
                }
                if waiting.load(Ordering::Relaxed) {
                    info.data.take();
                    return gst::PadProbeReturn::Handled;
                }
                gst::PadProbeReturn::Ok
            });
        }

        // Count marked frames; only the ones to keep go on to the JPEG encoder.
        let (every, limit) = (self.args.snapshot_every.max(1), self.args.snapshot_frames);
        let numbers = Arc::new(Mutex::new(VecDeque::<u64>::new()));
        let count = AtomicU64::new(0);
        {
            let numbers = numbers.clone();
            to_jpeg.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(every) && (limit == 0 || n <= limit) {
                    numbers.lock().unwrap().push_back(n);
                    gst::PadProbeReturn::Ok
                } else {
                    // Taken and Handled, not Drop: on Drop GStreamer 1.22 unrefs the pointer
                    // gstreamer-rs emptied (a GStreamer-CRITICAL for every frame not kept).
                    info.data.take();
                    gst::PadProbeReturn::Handled
                }
            });
        }
        let (folder, written) = (dir.clone(), sinks.snapshots.clone());
        appsink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let n = numbers.lock().unwrap().pop_front().unwrap_or(0);
                    if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        let path = folder.join(naming::snapshot_file(n));
                        match std::fs::write(&path, map.as_slice()) {
                            Ok(()) => {
                                written.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => eprintln!("cannot write {}: {e}", path.display()),
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(FaceAdded { dir, decoder, appsink: appsink.upcast(), mux_feed })
    }
}
