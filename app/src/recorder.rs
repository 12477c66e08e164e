//! One pipeline: a whipserversrc per stream (output=encoded, on-disconnect=wait) and, per
//! session, a recording bin made when the session starts (its codecs are known then, before any
//! media) and finalized with EOS when it ends, while the server goes on.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::ServeArgs;
use crate::analysis;
use crate::facemark_properties;
use crate::metrics::{SessionMetrics, Snapshot};
use crate::progress;
use crate::served::{Access, EventsHub, Served};
use crate::tracks::Gates;
use crate::viewing::{self, Watched};
use gstwhipsrc::server::TlsFiles;

/// Decoders for facemark, best first: NVIDIA's where the GPU is there, then the CPU ones.
const DECODERS: &[(&str, &[&str])] = &[
    ("AV1", &["nvav1dec", "dav1ddec", "av1dec"]),
    ("H264", &["nvh264dec", "avdec_h264"]),
    ("H265", &["nvh265dec", "avdec_h265"]),
    ("VP8", &["nvvp8dec", "vp8dec"]),
    ("VP9", &["nvvp9dec", "vp9dec"]),
];

/// MP4 fragment length: what a crash can cost at most (MediaMTX writes 1 s parts too).
const MP4_FRAGMENT_MS: u32 = 1000;

/// A session left without its EOS reaching the files within this is torn down anyway.
const FINALIZE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    args: ServeArgs,
    pipeline: gst::Pipeline,
    main_loop: glib::MainLoop,
    facemark: Option<String>,
    state: Mutex<State>,
    /// Readers of `/events/<stream>`.
    events: Arc<EventsHub>,
    /// facemark's inference times and drops, over every session.
    analysis: Arc<Mutex<analysis::Totals>>,
    /// `/metrics` and `/events` on the server, once it listens.
    served: Mutex<Option<Served>>,
    /// Whether each stream's annotated view (WHEP) is watched.
    watched: Mutex<HashMap<String, Watched>>,
}

#[derive(Default)]
struct State {
    /// Recordings of the sessions running now, by session id.
    live: HashMap<String, Recording>,
    /// Recordings whose EOS is on its way to the file, by recording name.
    finishing: HashMap<String, Recording>,
    recorded: u32,
    quitting: bool,
    failure: Option<String>,
}

/// The decode-and-mark branch of a recording: it may fail (a decoder refusing a frame) without
/// ending the recording.
#[derive(Clone, Default)]
struct FaceBranch {
    /// Failed: what reaches it is dropped, so the recording never sees its error.
    off: Arc<AtomicBool>,
    /// Its sink is done (EOS, or the branch failed): counted once towards finalizing.
    done: Arc<AtomicBool>,
}

/// Where a face branch's marked frames go: snapshots (counted), and the annotated view while
/// `watched`.
struct FaceSinks<'a> {
    snapshots: &'a Arc<AtomicU64>,
    watched: Option<Watched>,
}

/// Elements of the face branch are named with this prefix, so their errors are told apart.
const FACE_PREFIX: &str = "face-";
/// The queues whose threads do one stage each (`cargo bench --bench capacity` splits the CPU by
/// these thread names): a recording's inputs, its muxing, the face branch's decoding and marking.
const INPUT_PREFIX: &str = "in-";
const MUXING_QUEUE: &str = "to-mux";
const DECODING_QUEUE: &str = "face-decode";
const MARKING_QUEUE: &str = "face-mark";

struct Recording {
    name: String,
    face: Option<FaceBranch>,
    /// Sinks (file, snapshots) whose EOS has not come yet.
    pending: Arc<AtomicUsize>,
    src: gst::Element,
    bin: gst::Bin,
    file: PathBuf,
    snapshot_dir: Option<PathBuf>,
    /// The fragmentsync before the file: how much of the file is whole, should a write fail.
    whole: gst::Element,
    /// Which streams the file gets (tracks.rs).
    gates: Gates,
    inputs: Vec<String>,
    summary: String,
    frames: Arc<AtomicU64>,
    /// Buffers (audio and video) that reached the muxer.
    media: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
    started: Instant,
}

fn utc_stamp() -> String {
    glib::DateTime::now_utc()
        .and_then(|t| t.format("%Y%m%dT%H%M%SZ"))
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "now".into())
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| format!("GStreamer element {factory} is missing"))
}

fn installed(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

fn decoder_for(codec: &str) -> Option<&'static str> {
    decoder_among(codec, &installed)
}

fn decoder_among(codec: &str, installed: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    let (_, candidates) = DECODERS.iter().find(|(c, _)| *c == codec)?;
    candidates.iter().copied().find(|f| installed(f))
}

/// Which decoder facemark gets for each codec; where NVDEC decodes some codecs but not one
/// (an H200 has no AV1 in NVDEC), that one is said to be decoded on the CPU.
fn decoders_line(installed: &dyn Fn(&str) -> bool) -> String {
    let nvidia = |d: &str| d.starts_with("nv");
    let gpu = DECODERS.iter().any(|(codec, _)| decoder_among(codec, installed).is_some_and(nvidia));
    let each: Vec<String> = DECODERS
        .iter()
        .map(|(codec, _)| match decoder_among(codec, installed) {
            None => format!("{codec} with (no decoder: not marked)"),
            Some(d) if gpu && !nvidia(d) => format!("{codec} with {d}: NVDEC here has no {codec}, the CPU decodes it"),
            Some(d) => format!("{codec} with {d}"),
        })
        .collect();
    each.join(", ")
}

/// The container for a session: WebM takes AV1/VP8/VP9 with Opus, MP4 H.264/H.265.
fn container_for(video_codec: Option<&str>) -> (&'static str, &'static str) {
    match video_codec {
        None | Some("AV1" | "VP8" | "VP9") => ("webm", "webmmux"),
        Some("H264" | "H265") => ("mp4", "mp4mux"),
        Some(_) => ("mkv", "matroskamux"),
    }
}

impl Recorder {
    pub fn start(args: ServeArgs, main_loop: glib::MainLoop) -> Result<Recorder, String> {
        let facemark = if args.no_facemark { None } else { check_facemark(&args)? };
        let tokens: Vec<(String, Option<String>)> =
            args.streams.iter().map(|s| (s.clone(), args.token_for(s).map(str::to_owned))).collect();
        let inner = Arc::new(Inner {
            events: Arc::new(EventsHub::new(tokens.clone())),
            args,
            pipeline: gst::Pipeline::with_name("whipcast"),
            main_loop,
            facemark,
            state: Mutex::default(),
            analysis: Arc::default(),
            served: Mutex::default(),
            watched: Mutex::default(),
        });
        for stream in &inner.args.streams {
            let src = inner.whip_source(stream)?;
            inner.pipeline.add(&src).map_err(|e| e.to_string())?;
            viewing::add_endpoints(&inner.pipeline, &inner.args, stream, inner.facemark.is_some())?;
            if let Some(processed) = inner.pipeline.by_name(&viewing::processed_name(stream)) {
                inner.watched.lock().unwrap().insert(stream.clone(), Watched::follow(&processed));
            }
        }
        inner.watch_bus();
        if inner.pipeline.set_state(gst::State::Playing).is_err() {
            let why =
                inner.pipeline.bus().and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error])).and_then(|m| match m
                    .view()
                {
                    gst::MessageView::Error(e) => Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default())),
                    _ => None,
                });
            let _ = inner.pipeline.set_state(gst::State::Null);
            return Err(why.unwrap_or_else(|| "the pipeline does not start".into()));
        }
        let access = Access {
            address: SocketAddr::new(
                inner
                    .args
                    .address
                    .parse()
                    .map_err(|_| format!("address {:?} is not an IP address", inner.args.address))?,
                inner.args.port,
            ),
            tls: inner
                .args
                .tls_certificate
                .clone()
                .zip(inner.args.tls_key.clone())
                .map(|(certificate, key)| TlsFiles { certificate, key }),
            streams: tokens,
            metrics_open: inner.args.metrics_open,
        };
        let weak = Arc::downgrade(&inner);
        let served = Served::start(&access, inner.events.clone(), move || match weak.upgrade() {
            Some(inner) => inner.metrics(access.address),
            None => Snapshot::default(),
        });
        match served {
            Ok(served) => *inner.served.lock().unwrap() = Some(served),
            Err(e) => {
                let _ = inner.pipeline.set_state(gst::State::Null);
                return Err(e);
            }
        }
        {
            let weak = Arc::downgrade(&inner);
            glib::timeout_add_seconds(1, move || match weak.upgrade() {
                Some(inner) => {
                    inner.print_progress();
                    glib::ControlFlow::Continue
                }
                None => glib::ControlFlow::Break,
            });
        }
        {
            // Ctrl-C and SIGTERM: handled on the main loop, where the recordings are finalized.
            let weak = Arc::downgrade(&inner);
            let (sender, receiver) = std::sync::mpsc::channel::<()>();
            ctrlc::set_handler(move || {
                let _ = sender.send(());
            })
            .map_err(|e| format!("cannot handle Ctrl-C: {e}"))?;
            glib::timeout_add(Duration::from_millis(100), move || {
                if receiver.try_recv().is_ok()
                    && let Some(inner) = weak.upgrade()
                {
                    inner.quit();
                }
                glib::ControlFlow::Continue
            });
        }
        if let Some(decoders) = &inner.facemark {
            println!("facemark: {decoders}");
        }
        Ok(Recorder { inner })
    }

    pub fn shut_down(self) -> Result<(), String> {
        let _ = self.inner.pipeline.set_state(gst::State::Null);
        match self.inner.state.lock().unwrap().failure.take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// Whether facemark can run here (its models load); says which decoders it would use. A
/// `--facemark-property` facemark does not take is an error.
fn check_facemark(args: &ServeArgs) -> Result<Option<String>, String> {
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

impl Inner {
    fn whip_source(self: &Arc<Self>, stream: &str) -> Result<gst::Element, String> {
        let a = &self.args;
        let src = gst::ElementFactory::make("whipserversrc")
            .name(format!("whip-{stream}"))
            .property("stream", stream)
            .property("token", a.token_for(stream).unwrap_or_default())
            .property_from_str("output", "encoded")
            .property_from_str("on-disconnect", "wait")
            .property("publish-page", !a.no_publish_page)
            .property("timeout", a.timeout)
            // Simulcast: facemark gets the analysis_0 pad (a smaller layer), the file video_0.
            .property("analysis-min-height", if self.facemark.is_some() { a.analysis_height } else { 0 })
            .build()
            .map_err(|_| "whipserversrc is missing".to_string())?;
        a.set_endpoint_properties(&src);
        let weak = Arc::downgrade(self);
        src.connect("session-started", false, move |values| {
            let src = values[0].get::<gst::Element>().unwrap();
            let id = values[1].get::<String>().unwrap();
            let remote = values[2].get::<String>().unwrap();
            let user_agent = values[3].get::<String>().unwrap();
            let streams = values[4].get::<gst::Structure>().unwrap();
            if let Some(inner) = weak.upgrade() {
                inner.session_started(&src, &id, &remote, &user_agent, &streams);
            }
            None
        });
        let weak = Arc::downgrade(self);
        src.connect("session-ended", false, move |values| {
            let id = values[1].get::<String>().unwrap();
            let reason = values[4].get::<String>().unwrap();
            if let Some(inner) = weak.upgrade() {
                inner.session_ended(&id, &reason);
            }
            None
        });
        let weak = Arc::downgrade(self);
        src.connect_pad_added(move |src, pad| {
            if let Some(inner) = weak.upgrade() {
                inner.link_new_pad(src, pad);
            }
        });
        Ok(src)
    }

    fn session_started(
        self: &Arc<Self>,
        src: &gst::Element,
        id: &str,
        remote: &str,
        user_agent: &str,
        streams: &gst::Structure,
    ) {
        let stream = src.property::<String>("stream");
        match self.build_recording(src, &stream, streams) {
            Ok(recording) => {
                println!(
                    "\nsession {id} on {stream} from {remote} ({user_agent}): {} -> {}",
                    recording.summary,
                    recording.file.display()
                );
                let inputs = recording.inputs.clone();
                let bin = recording.bin.clone();
                self.state.lock().unwrap().live.insert(id.to_owned(), recording);
                // Pads that exist from an earlier session; new ones come through pad-added.
                for name in inputs {
                    if let Some(pad) = src.static_pad(&name) {
                        self.link_input(src, &pad, &bin);
                    }
                }
                self.link_processed(&stream, &bin);
            }
            Err(e) => println!("\nsession {id} on {stream} from {remote} is not recorded: {e}"),
        }
    }

    fn link_new_pad(&self, src: &gst::Element, pad: &gst::Pad) {
        let stream = src.property::<String>("stream");
        if let Err(e) = viewing::split(&self.pipeline, src, pad, &stream) {
            println!("\n{} is not served to viewers: {e}", pad.name());
        }
        let bin = {
            let state = self.state.lock().unwrap();
            let recording = state.live.values().find(|r| &r.src == src && r.inputs.iter().any(|n| *n == pad.name()));
            recording.map(|r| r.bin.clone())
        };
        if let Some(bin) = bin {
            self.link_input(src, pad, &bin);
        }
    }

    /// Feeds the recording `bin`'s input of the same name from `src_pad` (of whipserversrc `src`).
    fn link_input(&self, src: &gst::Element, src_pad: &gst::Pad, bin: &gst::Bin) {
        let Some(sink_pad) = bin.static_pad(&src_pad.name()) else { return };
        if sink_pad.is_linked() {
            return;
        }
        let Some(from) = viewing::feed(&self.pipeline, src, src_pad) else {
            println!("\ncannot record {}: no branch for it", src_pad.name());
            return;
        };
        if let Some(old) = from.peer() {
            let _ = from.unlink(&old);
        }
        // The pad still holds the caps of the previous session (perhaps another codec): this
        // session's caps come with its first buffer.
        if let Err(e) = from.link_full(&sink_pad, gst::PadLinkCheck::HIERARCHY) {
            println!("\ncannot record {}: {e:?}", src_pad.name());
        }
    }

    /// The annotated video of a recording (its `processed` pad) to the stream's annotated view.
    fn link_processed(&self, stream: &str, bin: &gst::Bin) {
        let (Some(out), Some(view)) =
            (bin.static_pad("processed"), self.pipeline.by_name(&viewing::processed_name(stream)))
        else {
            return;
        };
        let Some(input) = view.static_pad("video_0").or_else(|| view.request_pad_simple("video_%u")) else { return };
        if let Some(old) = input.peer() {
            let _ = old.unlink(&input);
        }
        if let Err(e) = out.link(&input) {
            println!("\nthe annotated view of {stream} gets nothing: {e:?}");
        }
    }

    fn build_recording(
        self: &Arc<Self>,
        src: &gst::Element,
        stream: &str,
        streams: &gst::Structure,
    ) -> Result<Recording, String> {
        let video_codec =
            streams.iter().find(|(name, _)| name.starts_with("video_")).and_then(|(_, v)| v.get::<String>().ok());
        let (extension, muxer) = container_for(video_codec.as_deref());
        let name = unique_name(&self.args.recordings, &format!("{stream}-{}", utc_stamp()), extension);
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
                self.add_face_branch(&bin, &queue, track.is_some(), &codec, &name, sinks, &branch, output)
            } else {
                Err(String::new())
            };
            // What goes to the muxer, once the file's tracks are decided (tracks.rs).
            let mut mux_feed = None;
            match added {
                Ok((dir, decoder, appsink, feed)) => {
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

    /// queue ! tee, one branch to the muxer (`mux_pad`), the other decoded and marked, every Nth
    /// frame a JPEG; without `mux_pad` (a simulcast layer for analysis only) the queue feeds the
    /// decoder alone. The decoding side never holds the recording back (leaky queues).
    fn add_face_branch(
        &self,
        bin: &gst::Bin,
        queue: &gst::Element,
        feeds_mux: bool,
        codec: &str,
        name: &str,
        sinks: FaceSinks<'_>,
        branch: &FaceBranch,
        output: analysis::Output,
    ) -> Result<(PathBuf, &'static str, gst::Element, Option<gst::Pad>), String> {
        let decoder = decoder_for(codec).ok_or_else(|| format!("no decoder for {codec} is installed"))?;
        let dir = self.args.recordings.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let to_decoder = live_queue(true)?;
        let mut chain = Vec::new();
        if let Some(parser) = match codec {
            "H264" => Some("h264parse"),
            "H265" => Some("h265parse"),
            _ => None,
        } {
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
                        let path = folder.join(format!("z{n}.jpg"));
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
        Ok((dir, decoder, appsink.upcast(), mux_feed))
    }

    fn session_ended(self: &Arc<Self>, id: &str, reason: &str) {
        let recording = self.state.lock().unwrap().live.remove(id);
        if let Some(recording) = recording {
            println!("\nsession {id} ended: {reason}");
            self.finish(recording);
        }
    }

    /// Detaches the recording from the server and sends EOS through it to finalize the file.
    fn finish(self: &Arc<Self>, recording: Recording) {
        for name in &recording.inputs {
            if let Some(sink_pad) = recording.bin.static_pad(name) {
                viewing::unfeed(&sink_pad);
            }
        }
        // The annotated view goes on with the next session.
        if let Some(out) = recording.bin.static_pad("processed")
            && let Some(view) = out.peer()
        {
            let _ = out.unlink(&view);
        }
        // Streams that never sent leave the file before the end goes through.
        recording.gates.end();
        let (bin, name) = (recording.bin.clone(), recording.name.clone());
        self.state.lock().unwrap().finishing.insert(name.clone(), recording);
        for pad in bin.sink_pads() {
            pad.send_event(gst::event::Eos::new());
        }
        let weak = Arc::downgrade(self);
        glib::timeout_add_once(FINALIZE_TIMEOUT, move || {
            if let Some(inner) = weak.upgrade() {
                inner.finalized(&name, Some("its end did not reach the file in time; the file may be incomplete"));
            }
        });
    }

    /// The recording `name` is complete (or has failed): stop its elements and say what it holds.
    fn finalized(&self, name: &str, problem: Option<&str>) {
        let Some(recording) = self.state.lock().unwrap().finishing.remove(name) else { return };
        // A recording that failed (a full disk) or was not finalized: the file is cut back to
        // its last whole fragment, where it decodes as after a crash.
        let whole_bytes = problem.map(|_| recording.whole.property::<u64>("committed"));
        let _ = recording.bin.set_state(gst::State::Null);
        if let Some(length) = whole_bytes
            && std::fs::metadata(&recording.file).is_ok_and(|m| m.len() > length)
            && let Err(e) =
                std::fs::OpenOptions::new().write(true).open(&recording.file).and_then(|f| f.set_len(length))
        {
            println!("cannot cut {} back to its last whole fragment: {e}", recording.file.display());
        }
        let _ = self.pipeline.remove(&recording.bin);
        let frames = recording.frames.load(Ordering::Relaxed);
        let mut line = if recording.media.load(Ordering::Relaxed) == 0 {
            // A publisher that never sent media (OBS giving up after the answer): no file.
            let _ = std::fs::remove_file(&recording.file);
            if let Some(dir) = &recording.snapshot_dir {
                let _ = std::fs::remove_dir(dir);
            }
            format!("nothing recorded for {}: no media arrived", recording.name)
        } else {
            self.describe(&recording, frames)
        };
        if let Some(problem) = problem {
            line += &format!(": {problem}");
        }
        println!("{line}");
        let _ = std::io::stdout().flush();
        let done = {
            let mut state = self.state.lock().unwrap();
            state.recorded += 1;
            let limit_reached = self.args.sessions > 0 && state.recorded >= self.args.sessions;
            if limit_reached {
                state.quitting = true;
            }
            state.quitting && state.finishing.is_empty() && (limit_reached || state.live.is_empty())
        };
        if done {
            self.main_loop.quit();
        }
    }

    /// An element of a face branch failed: that branch stops, its recording goes on.
    fn face_failed(self: &Arc<Self>, source: &gst::Object, text: &str) {
        let Some(bin) = std::iter::successors(Some(source.clone()), |o| o.parent())
            .find_map(|o| o.downcast::<gst::Bin>().ok().filter(|b| b.name().starts_with("recording-")))
        else {
            return;
        };
        let found = {
            let state = self.state.lock().unwrap();
            state
                .live
                .values()
                .chain(state.finishing.values())
                .find(|r| r.bin == bin)
                .and_then(|r| r.face.clone().map(|f| (f, r.pending.clone(), r.name.clone())))
        };
        let Some((face, pending, name)) = found else { return };
        if !face.off.swap(true, Ordering::AcqRel) {
            println!("\nfacemark stops for {name} (the recording goes on): {text}");
        }
        if !face.done.swap(true, Ordering::AcqRel) {
            sink_done(&pending, &Arc::downgrade(self), &name);
        }
    }

    /// `recorded FILE (N video frames, S s; K snapshots in DIR)`.
    fn describe(&self, recording: &Recording, frames: u64) -> String {
        let mut line = format!(
            "recorded {} ({frames} video frames, {:.1} s",
            recording.file.display(),
            recording.started.elapsed().as_secs_f64()
        );
        if let Some(dir) = &recording.snapshot_dir {
            line += &format!("; {} snapshots in {}", recording.snapshots.load(Ordering::Relaxed), dir.display());
        }
        line + ")"
    }

    /// Ctrl-C: finalize what is being recorded, then stop. A second Ctrl-C stops at once.
    fn quit(self: &Arc<Self>) {
        let live: Vec<Recording> = {
            let mut state = self.state.lock().unwrap();
            if state.quitting {
                println!("\nstopping now");
                self.main_loop.quit();
                return;
            }
            state.quitting = true;
            state.live.drain().map(|(_, r)| r).collect()
        };
        println!("\nstopping: finalizing {} recording(s)", live.len());
        if live.is_empty() && self.state.lock().unwrap().finishing.is_empty() {
            self.main_loop.quit();
        }
        for recording in live {
            self.finish(recording);
        }
    }

    fn watch_bus(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let bus = self.pipeline.bus().unwrap();
        // facemark's results leave from facemark's own thread, as each frame is analysed.
        bus.set_sync_handler(
            |_, message| {
                if analysis::handle(message) { gst::BusSyncReply::Drop } else { gst::BusSyncReply::Pass }
            },
        );
        let watch = bus
            .add_watch(move |_, message| {
                let Some(inner) = weak.upgrade() else { return glib::ControlFlow::Break };
                if let gst::MessageView::Error(e) = message.view() {
                    inner.on_error(message.src(), &format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                }
                glib::ControlFlow::Continue
            })
            .expect("one bus watch");
        // The watch lives as long as the pipeline.
        unsafe { self.pipeline.set_data("bus-watch", watch) };
    }

    /// What `/metrics` says now: each stream's live session from its whipserversrc's stats.
    fn metrics(&self, address: SocketAddr) -> Snapshot {
        // Read, then released before asking the elements: a session starting holds an element's
        // lock while its pad-added handler waits for this one.
        let recorded: Vec<(gst::Element, u64)> = {
            let state = self.state.lock().unwrap();
            state.live.values().map(|r| (r.src.clone(), r.frames.load(Ordering::Relaxed))).collect()
        };
        let mut sessions = Vec::new();
        for stream in &self.args.streams {
            let Some(src) = self.pipeline.by_name(&format!("whip-{stream}")) else { continue };
            let stats = src.property::<gst::Structure>("stats");
            let Ok(session) = stats.get::<gst::Structure>("session") else { continue };
            let count = |name: &str| session.get::<u64>(name).unwrap_or(0);
            sessions.push(SessionMetrics {
                stream: stream.clone(),
                received_bytes_per_second: count("bitrate") / 8,
                packets_received: count("packets-received"),
                packets_lost: session.get::<i64>("packets-lost").unwrap_or(0).max(0) as u64,
                nacks_sent: count("nack-count"),
                keyframe_requests: count("keyframe-requests"),
                jitter_seconds: session.get::<f64>("jitter").unwrap_or(0.0),
                recording_frames: recorded.iter().find(|(s, _)| *s == src).map_or(0, |(_, frames)| *frames),
            });
        }
        let analysis = self.analysis.lock().unwrap().clone();
        let viewers = self
            .args
            .streams
            .iter()
            .flat_map(|s| [viewing::source_name(s), viewing::processed_name(s)])
            .filter_map(|name| self.pipeline.by_name(&name))
            .map(|sink| sink.property::<gst::Structure>("stats").get::<gst::Array>("viewers").map_or(0, |a| a.len()))
            .sum::<usize>() as u64;
        Snapshot {
            sessions,
            viewers,
            http_responses: gstwhipsrc::server::responses(address),
            inference_seconds: analysis.inference_seconds,
            dropped_inferences: analysis.dropped_inferences,
        }
    }

    /// An error inside a recording ends that recording; anywhere else it ends the server.
    fn on_error(self: &Arc<Self>, source: Option<&gst::Object>, text: &str) {
        if let Some(source) = source.filter(|s| s.name().starts_with(FACE_PREFIX)) {
            self.face_failed(source, text);
            return;
        }
        let failed_bin = source.and_then(|s| {
            std::iter::successors(Some(s.clone()), |o| o.parent())
                .find_map(|o| o.downcast::<gst::Bin>().ok().filter(|b| b.name().starts_with("recording-")))
        });
        if let Some(bin) = failed_bin {
            let (session, finishing_name) = {
                let state = self.state.lock().unwrap();
                let session = state.live.iter().find(|(_, r)| r.bin == bin).map(|(id, _)| id.clone());
                let finishing = state.finishing.iter().find(|(_, r)| r.bin == bin).map(|(n, _)| n.clone());
                (session, finishing)
            };
            let file = {
                let state = self.state.lock().unwrap();
                state.live.values().chain(state.finishing.values()).find(|r| r.bin == bin).map(|r| r.file.clone())
            };
            // Errors that follow the first one come from a recording already ended: said once.
            let Some(file) = file else { return };
            println!("\nrecording {} failed: {text}", file.display());
            if let Some(id) = session {
                let recording = self.state.lock().unwrap().live.remove(&id);
                if let Some(recording) = recording {
                    let name = recording.name.clone();
                    self.state.lock().unwrap().finishing.insert(name.clone(), recording);
                    self.finalized(&name, Some("failed"));
                }
            } else if let Some(name) = finishing_name {
                self.finalized(&name, Some("failed"));
            }
            return;
        }
        println!("\nerror: {text}");
        self.state.lock().unwrap().failure = Some(text.to_owned());
        self.main_loop.quit();
    }

    /// One line per live recording: a live line on a terminal, every 10 s otherwise.
    fn print_progress(&self) {
        static TICKS: AtomicU64 = AtomicU64::new(0);
        let tick = TICKS.fetch_add(1, Ordering::Relaxed);
        let terminal = std::io::stdout().is_terminal();
        if !terminal && tick % 10 != 9 {
            return;
        }
        let state = self.state.lock().unwrap();
        for recording in state.live.values() {
            let stats = recording.src.property::<gst::Structure>("stats");
            let session = stats.get::<gst::Structure>("session").ok();
            let field = |name: &str| session.as_ref().and_then(|s| s.get::<u64>(name).ok()).unwrap_or(0);
            let lost = session.as_ref().and_then(|s| s.get::<i64>("packets-lost").ok()).unwrap_or(0);
            let layers = session.as_ref().map(|s| progress::layers_of(s)).unwrap_or_default();
            let line = format!(
                "{}: {}, {:.2} Mbit/s{}, {} frames, {} packets lost{}",
                recording.name,
                recording.summary,
                field("bitrate") as f64 / 1e6,
                progress::layers_text(&layers, recording.started.elapsed().as_secs_f64()),
                recording.frames.load(Ordering::Relaxed),
                lost,
                match &recording.snapshot_dir {
                    Some(_) => format!(", {} snapshots", recording.snapshots.load(Ordering::Relaxed)),
                    None => String::new(),
                }
            );
            if terminal {
                print!("\r\x1b[K{line}");
            } else {
                println!("{line}");
            }
        }
        let _ = std::io::stdout().flush();
    }
}

/// One more sink of recording `name` has its EOS: with the last one, the recording is finalized.
fn sink_done(pending: &AtomicUsize, weak: &std::sync::Weak<Inner>, name: &str) {
    if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        let (weak, name) = (weak.clone(), name.to_owned());
        // Not from a streaming thread: the bin is stopped and removed.
        glib::MainContext::default().invoke(move || {
            if let Some(inner) = weak.upgrade() {
                inner.finalized(&name, None);
            }
        });
    }
}

/// A queue for live data: up to 3 s, and for `leaky` ones the oldest data goes when full.
/// The pads of whipserversrc whose RTP arrives (its stats' `receiving`).
fn receiving(src: Option<&gst::Element>) -> Vec<String> {
    let stats = src.map(|src| src.property::<gst::Structure>("stats"));
    let list = stats.as_ref().and_then(|s| s.get::<gst::Structure>("session").ok());
    let list = list.and_then(|s| s.get::<gst::Array>("receiving").ok());
    list.map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect()).unwrap_or_default()
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

fn live_queue(leaky: bool) -> Result<gst::Element, String> {
    let queue = gst::ElementFactory::make("queue")
        .property("max-size-buffers", 0u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 3 * gst::ClockTime::SECOND.nseconds())
        .build()
        .map_err(|_| "queue is missing")?;
    if leaky {
        queue.set_property_from_str("leaky", "downstream");
    }
    Ok(queue)
}

/// `base`, or `base-2`, `base-3` ... when a file of that name exists.
fn unique_name(folder: &Path, base: &str, extension: &str) -> String {
    (1..)
        .map(|i| if i == 1 { base.to_owned() } else { format!("{base}-{i}") })
        .find(|name| !folder.join(format!("{name}.{extension}")).exists() && !folder.join(name).exists())
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_says_where_nvdec_lacks_a_codec() {
        // An H200 server: NVDEC for H.264, H.265, VP8, VP9, none for AV1.
        let h200 = |f: &str| ["nvh264dec", "nvh265dec", "nvvp8dec", "nvvp9dec", "dav1ddec", "avdec_h264"].contains(&f);
        let line = decoders_line(&h200);
        assert!(line.starts_with("AV1 with dav1ddec: NVDEC here has no AV1, the CPU decodes it, H264 with nvh264dec"));
        assert!(line.ends_with("VP9 with nvvp9dec"), "{line}");
        // No GPU: nothing to say about NVDEC.
        let cpu = |f: &str| ["av1dec", "avdec_h264", "vp8dec"].contains(&f);
        assert_eq!(
            decoders_line(&cpu),
            "AV1 with av1dec, H264 with avdec_h264, H265 with (no decoder: not marked), VP8 with vp8dec, \
             VP9 with (no decoder: not marked)"
        );
    }

    #[test]
    fn containers_follow_the_video_codec() {
        assert_eq!(container_for(Some("AV1")), ("webm", "webmmux"));
        assert_eq!(container_for(Some("VP8")), ("webm", "webmmux"));
        assert_eq!(container_for(Some("H264")), ("mp4", "mp4mux"));
        assert_eq!(container_for(Some("H265")), ("mp4", "mp4mux"));
        assert_eq!(container_for(None), ("webm", "webmmux"), "audio only: Opus in WebM");
    }

    #[test]
    fn names_do_not_overwrite() {
        let dir = std::env::temp_dir().join(format!("whipcast-names-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x");
        std::fs::write(dir.join("live-x.webm"), b"").unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x-2");
        std::fs::create_dir(dir.join("live-x-2")).unwrap();
        assert_eq!(unique_name(&dir, "live-x", "webm"), "live-x-3");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
