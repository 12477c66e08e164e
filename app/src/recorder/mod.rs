//! One pipeline: a whipcastsrc per stream (output=encoded, on-disconnect=wait) and, per
//! session, a recording bin made when the session starts (its codecs are known then, before any
//! media) and finalized with EOS when it ends, while the server goes on.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::analysis;
use crate::args::ServeArgs;
use crate::metrics::Snapshot;
use crate::naming::container_for;
use crate::served::{Access, EventsHub, Served};
use crate::tracks::Gates;
use crate::viewing::{self, Watched};
use face_branch::{FaceBranch, check_facemark, face_branch_factories};
use gstwhipsrc::server::TlsFiles;
use queues::{MARKING_QUEUE, yield_to_recording};

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

/// Elements of the face branch are named with this prefix, so their errors are told apart.
const FACE_PREFIX: &str = "face-";

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

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory).build().map_err(|_| format!("GStreamer element {factory} is missing"))
}

/// Loads the plugins of the elements a session's recording is made of (each codec's muxer and,
/// with facemark, its face branch): the first session otherwise loads them while its publisher
/// waits for the answer (gst-libav alone took 0.24 s on 2 busy cores). Missing ones are left to
/// the session, which says so.
fn load_recording_plugins(facemark: bool) {
    let muxers = crate::decoders::codecs().map(Some).chain([None]).map(|codec| container_for(codec).1);
    let face: Vec<&str> = match facemark {
        true => crate::decoders::codecs().flat_map(face_branch_factories).collect(),
        false => Vec::new(),
    };
    for name in muxers.chain(face).chain(["fragmentsync"]) {
        if let Some(factory) = gst::ElementFactory::find(name) {
            let _ = factory.load();
        }
    }
}

impl Recorder {
    pub fn start(args: ServeArgs, main_loop: glib::MainLoop) -> Result<Recorder, String> {
        let facemark = if args.no_facemark { None } else { check_facemark(&args)? };
        load_recording_plugins(facemark.is_some());
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

impl Inner {
    fn whip_source(self: &Arc<Self>, stream: &str) -> Result<gst::Element, String> {
        let a = &self.args;
        let src = gst::ElementFactory::make("whipcastsrc")
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
            .map_err(|_| "whipcastsrc is missing".to_string())?;
        a.set_endpoint_properties(&src);
        let weak = Arc::downgrade(self);
        // The signals' arguments by name and type (whipcastsrc's signal docs), not by index.
        let started = glib::closure!(move |src: &gst::Element,
                                           id: &str,
                                           remote: &str,
                                           user_agent: &str,
                                           streams: gst::Structure| {
            if let Some(inner) = weak.upgrade() {
                inner.session_started(src, id, remote, user_agent, &streams);
            }
        });
        src.connect_closure("session-started", false, started);
        let weak = Arc::downgrade(self);
        let ended =
            glib::closure!(move |_: &gst::Element, id: &str, _remote: &str, _user_agent: &str, reason: &str| {
                if let Some(inner) = weak.upgrade() {
                    inner.session_ended(id, reason);
                }
            });
        src.connect_closure("session-ended", false, ended);
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

    /// Feeds the recording `bin`'s input of the same name from `src_pad` (of whipcastsrc `src`).
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
        // facemark's results leave from facemark's own thread, as each frame is analysed; a
        // marking thread entering its loop posts its stream status from itself.
        bus.set_sync_handler(|_, message| {
            if let gst::MessageView::StreamStatus(status) = message.view()
                && let (gst::StreamStatusType::Enter, owner) = status.get()
                && owner.name() == MARKING_QUEUE
            {
                yield_to_recording(&owner);
            }
            if analysis::handle(message) { gst::BusSyncReply::Drop } else { gst::BusSyncReply::Pass }
        });
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

/// The pads of whipcastsrc whose RTP arrives (its stats' `receiving`).
fn receiving(src: Option<&gst::Element>) -> Vec<String> {
    let stats = src.map(|src| src.property::<gst::Structure>("stats"));
    let list = stats.as_ref().and_then(|s| s.get::<gst::Structure>("session").ok());
    let list = list.and_then(|s| s.get::<gst::Array>("receiving").ok());
    list.map(|a| a.iter().filter_map(|v| v.get::<String>().ok()).collect()).unwrap_or_default()
}

mod face_branch;
mod queues;
mod recording;
mod report;
