//! record-whip: a WHIP endpoint that records one publisher's AV1 video (and Opus audio, when sent)
//! to WebM without re-encoding, built the way an application embeds whipcast: the plugins are
//! linked in and registered statically, so no GST_PLUGIN_PATH and no installed .so is needed.
//!
//! It exits when the publisher leaves (DELETE, or silent for `--timeout` s) or on Ctrl-C / SIGTERM,
//! after the muxer has finalized the file; a second Ctrl-C quits at once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

const USAGE: &str = "usage: record-whip [--address ADDR] [--port PORT] [--stream NAME] [--token TOKEN] \
                     [--timeout SECONDS] [--output FILE.webm]";

/// How long after a session's first pad the others may still come: whipcastsrc adds a pad for
/// each medium when its first packet arrives, and the muxer must have all its pads before it
/// writes the file's header. Until then each branch is held (its data waits in whipcastsrc).
const SETTLE: Duration = Duration::from_secs(1);

/// What the command line sets; the rest keeps whipcastsrc's defaults.
struct Options {
    address: Option<String>,
    port: Option<u32>,
    stream: Option<String>,
    token: Option<String>,
    timeout: Option<u32>,
    output: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        address: None,
        port: None,
        stream: None,
        token: None,
        timeout: None,
        output: "recording.webm".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--address" => o.address = Some(value()?),
            "--port" => o.port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--stream" => o.stream = Some(value()?),
            "--token" => o.token = Some(value()?),
            "--timeout" => o.timeout = Some(value()?.parse().map_err(|e| format!("--timeout: {e}"))?),
            "--output" => o.output = value()?.into(),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("record-whip: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("record-whip: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Registers whipcast's three plugins from this binary: no plugin files are looked up.
fn register_plugins() -> Result<(), gst::glib::BoolError> {
    gstav1rtp::plugin_register_static()?;
    gstwhipsrc::plugin_register_static()?;
    gstfacemark::plugin_register_static()?;
    Ok(())
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    register_plugins()?;

    let src = gst::ElementFactory::make("whipcastsrc")
        .property_if_some("address", o.address.as_ref())
        .property_if_some("port", o.port)
        .property_if_some("stream", o.stream.as_ref())
        .property_if_some("timeout", o.timeout)
        .property_if_some("token", o.token.as_ref())
        .property("video-codecs", "AV1")
        .property("audio-codecs", "OPUS")
        .property_from_str("on-disconnect", "eos")
        .build()?;
    let mux = gst::ElementFactory::make("webmmux").build()?;
    // Whole Matroska elements to the file, each written at once and fsynced: a crash leaves a
    // file that plays up to its last half second.
    let whole = gst::ElementFactory::make("fragmentsync").build()?;
    let sink = gst::ElementFactory::make("filesink")
        .property("location", o.output.to_str().ok_or("--output: not UTF-8")?)
        .build()?;
    let pipeline = gst::Pipeline::new();
    pipeline.add_many([&src, &mux, &whole, &sink])?;
    gst::Element::link_many([&mux, &whole, &sink])?;

    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    src.connect("session-started", false, move |values| {
        let [id, remote, user_agent] = [1, 2, 3].map(|i| values[i].get::<String>().unwrap_or_default());
        // The pads this session feeds and their codecs (video_0=AV1, audio_0=OPUS), before any media.
        let streams = values[4].get::<gst::Structure>().map(|s| {
            s.iter()
                .map(|(pad, codec)| format!("{pad}={}", codec.get::<String>().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        });
        println!(
            "session started: id {id}, remote {remote}, user agent \"{user_agent}\", streams {}",
            streams.unwrap_or_default()
        );
        seen.store(true, Ordering::SeqCst);
        None
    });
    src.connect("session-ended", false, |values| {
        let [id, _, _, reason] = [1, 2, 3, 4].map(|i| values[i].get::<String>().unwrap_or_default());
        println!("session ended: id {id}: {reason}");
        None
    });
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    // whipcastsrc's pads appear when a publisher's media starts: video_0, audio_0.
    let branches = Arc::new(Mutex::new(Branches::default()));
    let (pending, join_later) = (branches.clone(), bus.clone());
    src.connect_pad_added(move |src, pad| {
        let mut branches = pending.lock().unwrap();
        if branches.joined {
            gst::element_warning!(
                src,
                gst::CoreError::Pad,
                ("{} came after the recording began: not recorded", pad.name())
            );
            return;
        }
        match hold_branch(src, pad) {
            Ok(branch) => branches.held.push(branch),
            Err(e) => {
                gst::element_error!(src, gst::CoreError::Pad, ("cannot record {}: {e}", pad.name()));
                return;
            }
        }
        if branches.held.len() == 1 {
            let bus = join_later.clone();
            std::thread::spawn(move || {
                std::thread::sleep(SETTLE);
                let _ = bus.post(gst::message::Application::new(gst::Structure::new_empty("join")));
            });
        }
    });

    // The file is complete when EOS reaches the filesink. (The pipeline's own EOS message can
    // wait longer: while a session is live, whipcastsrc's internal sinks see no EOS.)
    let complete = bus.clone();
    sink.static_pad("sink").ok_or("filesink without sink pad")?.add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data
                && e.type_() == gst::EventType::Eos
            {
                let _ = complete.post(gst::message::Application::new(gst::Structure::new_empty("file-complete")));
            }
            gst::PadProbeReturn::Ok
        },
    );
    let interrupts = bus.clone();
    ctrlc::set_handler(move || {
        let _ = interrupts.post(gst::message::Application::new(gst::Structure::new_empty("interrupt")));
    })?;

    pipeline.set_state(gst::State::Playing)?;
    println!(
        "record-whip: publish to http://{}:{}/whip/{}; recording to {}",
        src.property::<String>("address"),
        src.property::<u32>("port"),
        src.property::<String>("stream"),
        o.output.display()
    );
    let result = wait(&pipeline, &bus, &started, &branches, &mux, &o.output);
    pipeline.set_state(gst::State::Null)?;
    result
}

/// A depayloader and parser for one of whipcastsrc's pads, held until it joins the muxer.
struct Branch {
    pad: gst::Pad,
    hold: gst::PadProbeId,
    last: gst::Element,
    mux_template: &'static str,
}

#[derive(Default)]
struct Branches {
    held: Vec<Branch>,
    joined: bool,
}

/// Links `pad` to its depayloader and parser, and holds its data there.
fn hold_branch(src: &gst::Element, pad: &gst::Pad) -> Result<Branch, Box<dyn std::error::Error>> {
    let name = pad.name();
    let (chain, mux_template) = if name.starts_with("video_") {
        (["rtpav1depay-rs", "av1obufix"], "video_%u")
    } else if name.starts_with("audio_") {
        (["rtpopusdepay", "opusparse"], "audio_%u")
    } else {
        return Err(format!("unexpected pad {name}").into());
    };
    let bin = src.parent().and_downcast::<gst::Bin>().ok_or("whipcastsrc outside a bin")?;
    let elements = chain.iter().map(|f| gst::ElementFactory::make(f).build()).collect::<Result<Vec<_>, _>>()?;
    bin.add_many(&elements)?;
    gst::Element::link_many(&elements)?;
    for e in &elements {
        e.sync_state_with_parent()?;
    }
    let hold = pad
        .add_probe(gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| gst::PadProbeReturn::Ok)
        .ok_or("cannot hold the pad")?;
    pad.link(&elements[0].static_pad("sink").ok_or("no sink pad")?)?;
    Ok(Branch { pad: pad.clone(), hold, last: elements[elements.len() - 1].clone(), mux_template })
}

/// Links every held branch to the muxer, then lets their data flow: the muxer has all its pads
/// before the first buffer reaches it.
fn join(branches: &Mutex<Branches>, mux: &gst::Element) -> Result<(), Box<dyn std::error::Error>> {
    let mut branches = branches.lock().unwrap();
    branches.joined = true;
    let held = std::mem::take(&mut branches.held);
    for branch in &held {
        let mux_pad = mux.request_pad_simple(branch.mux_template).ok_or("the muxer gives no more pads")?;
        branch.last.static_pad("src").ok_or("no src pad")?.link(&mux_pad)?;
    }
    for branch in held {
        branch.pad.remove_probe(branch.hold);
        println!("recording {}", branch.pad.name());
    }
    Ok(())
}

/// Runs until the file is complete, an error, or an interrupt.
fn wait(
    pipeline: &gst::Pipeline,
    bus: &gst::Bus,
    started: &AtomicBool,
    branches: &Mutex<Branches>,
    mux: &gst::Element,
    output: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut finishing = false;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == "file-complete") => {
                println!("record-whip: {} is complete", output.display());
                return Ok(());
            }
            gst::MessageView::Error(e) => {
                let source = e.src().map(|s| s.path_string()).unwrap_or_default();
                return Err(format!("{source}: {} ({:?})", e.error(), e.debug()).into());
            }
            gst::MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == "join") => {
                join(branches, mux)?;
            }
            gst::MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == "interrupt") => {
                if !started.load(Ordering::SeqCst) {
                    println!("record-whip: interrupted before any publisher came; nothing recorded");
                    return Ok(());
                }
                if finishing {
                    return Err("interrupted again: the file may be incomplete".into());
                }
                // EOS through every branch: the muxer writes its index and the file is complete.
                println!("record-whip: interrupted, finishing {}", output.display());
                finishing = true;
                pipeline.send_event(gst::event::Eos::new());
            }
            _ => {}
        }
    }
    Err("the bus closed".into())
}
