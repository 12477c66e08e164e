//! A WHIP publisher made of gst-plugins-rs elements (`whipsink`, `whipclientsink`), run by the
//! tests as a separate process, as a user's publisher would be.
//!
//! usage: whip-publish URL [--sink whipsink|whipclientsink] [--codec av1|h264|h265|vp8]
//!        [--audio] [--seconds N] [--token T] [--image FILE]
//! `--image` sends a picture (e.g. a face) sliding across a 640x360 frame instead of a test pattern.
//! Prints one JSON line: {"ok":true,"frames_sent":N,"key_timestamps":[...]}: with whipsink, the RTP
//! timestamps of the key frames (the encoder's own and those asked for by PLI).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::prelude::*;

struct Args {
    url: String,
    sink: String,
    codec: String,
    audio: bool,
    seconds: u32,
    token: Option<String>,
    image: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        sink: "whipsink".into(),
        codec: "av1".into(),
        audio: false,
        seconds: 10,
        token: None,
        image: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sink" => a.sink = it.next().expect("--sink NAME"),
            "--codec" => a.codec = it.next().expect("--codec NAME"),
            "--audio" => a.audio = true,
            "--seconds" => a.seconds = it.next().and_then(|s| s.parse().ok()).expect("--seconds N"),
            "--token" => a.token = it.next(),
            "--image" => a.image = it.next(),
            url => a.url = url.to_owned(),
        }
    }
    assert!(!a.url.is_empty(), "usage: whip-publish URL [options]");
    a
}

use gst::glib;

fn main() {
    let a = args();
    gst::init().unwrap();
    gstrswebrtc::plugin_register_static().unwrap();
    gstwebrtchttp::plugin_register_static().unwrap();
    gstrsrtp::plugin_register_static().unwrap();

    let frames = a.seconds * 30;
    let frame = "video/x-raw,format=I420,width=640,height=360,framerate=30/1";
    let source = match &a.image {
        None => format!("videotestsrc is-live=true num-buffers={frames} pattern=ball ! {frame}"),
        Some(image) => format!(
            "filesrc location=\"{image}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,width=360,height=360 \
             ! imagefreeze is-live=true num-buffers={frames} ! video/x-raw,framerate=30/1 ! videobox name=slide fill=black left=-140 right=-140 ! videoconvert ! {frame}"
        ),
    };
    let (encode, caps) = match a.codec.as_str() {
        "av1" => (
            "av1enc min-quantizer=20 max-quantizer=40 cpu-used=8 usage-profile=realtime keyframe-max-dist=60 threads=2 ! av1parse ! rtpav1pay",
            "video/x-av1",
        ),
        "h264" => (
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bframes=0 ! video/x-h264,profile=constrained-baseline ! h264parse ! rtph264pay config-interval=-1 aggregate-mode=zero-latency",
            "video/x-h264",
        ),
        "vp8" => ("vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay", "video/x-vp8"),
        "h265" => (
            "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=60 option-string=bframes=0:open-gop=0 ! h265parse ! rtph265pay config-interval=-1 aggregate-mode=zero-latency",
            "video/x-h265",
        ),
        other => panic!("unknown codec {other}"),
    };
    let launch = match a.sink.as_str() {
        "whipsink" => {
            let audio = if a.audio {
                format!(
                    "audiotestsrc is-live=true num-buffers={} ! audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay pt=111 name=apay ! sink.",
                    a.seconds * 100
                )
            } else {
                String::new()
            };
            format!("{source} ! {encode} name=vpay ! whipsink name=sink whip-endpoint={} {audio}", a.url)
        }
        "whipclientsink" => {
            let audio = if a.audio {
                format!(
                    "audiotestsrc is-live=true num-buffers={} ! audio/x-raw,rate=48000,channels=2 ! sink.",
                    a.seconds * 100
                )
            } else {
                String::new()
            };
            format!(
                "{source} ! identity name=vpay ! whipclientsink name=sink video-caps={caps} signaller::whip-endpoint={} {audio}",
                a.url
            )
        }
        other => panic!("unknown sink {other}"),
    };
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    if let Some(slide) = pipeline.by_name("slide") {
        // The picture goes left and right across the frame, once every 4 s.
        let element = slide.clone();
        slide.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                // Negative borders: the 360x360 picture placed `left` pixels into a 640 frame.
                let phase = (pts.nseconds() as f64 / 4e9) * std::f64::consts::TAU;
                let left = (140.0 + 140.0 * phase.sin()) as i32;
                element.set_property("left", -left);
                element.set_property("right", -(280 - left));
            }
            gst::PadProbeReturn::Ok
        });
    }
    let sink = pipeline.by_name("sink").unwrap();
    if let Some(token) = &a.token {
        match a.sink.as_str() {
            "whipsink" => sink.set_property("auth-token", token),
            _ => sink.set_property_from_str("signaller::auth-token", token),
        }
    }
    // Both sinks send only once connected (frames before that are dropped): count from then.
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prepare = {
        let connected = connected.clone();
        move |webrtcbin: &gst::Element| {
            // libnice skips loopback addresses unless told: the tests publish over 127.0.0.1.
            let ice = webrtcbin.property::<glib::Object>("ice-agent");
            let _ = ice.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
            let connected = connected.clone();
            webrtcbin.connect_notify(Some("connection-state"), move |webrtcbin, _| {
                let state = webrtcbin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
                if state == gst_webrtc::WebRTCPeerConnectionState::Connected {
                    connected.store(true, Ordering::Relaxed);
                }
            });
        }
    };
    if a.sink == "whipsink" {
        let bin = sink.downcast_ref::<gst::Bin>().unwrap();
        for e in bin.iterate_recurse().into_iter().flatten() {
            if e.factory().is_some_and(|f| f.name() == "webrtcbin") {
                prepare(&e);
            }
        }
    } else {
        sink.connect("consumer-added", false, move |values| {
            prepare(&values[2].get::<gst::Element>().unwrap());
            None
        });
    }

    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    // Frames that left the encoder (whipsink) or entered the sink's own encoder (whipclientsink).
    let counted_pad = if a.sink == "whipsink" {
        pipeline.by_name("vpay").unwrap().static_pad("sink").unwrap()
    } else {
        pipeline.by_name("vpay").unwrap().static_pad("src").unwrap()
    };
    // webrtcbin-based sinks post no EOS: the video source's EOS passing here means all is sent.
    let bus = pipeline.bus().unwrap();
    let post_done = bus.clone();
    let counting = connected.clone();
    counted_pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        match &info.data {
            Some(gst::PadProbeData::Buffer(_)) if counting.load(Ordering::Relaxed) => {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                let _ = post_done.post(gst::message::Application::new(gst::Structure::new_empty("all-sent")));
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });

    let key_timestamps = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    if a.sink == "whipsink" {
        // Key frames by PTS as they enter the payloader, then their packets' RTP timestamps.
        let pay = pipeline.by_name("vpay").unwrap();
        let key_pts = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let keys = key_pts.clone();
        pay.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer().filter(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT)) {
                keys.lock().unwrap().insert(b.pts());
            }
            gst::PadProbeReturn::Ok
        });
        let timestamps = key_timestamps.clone();
        pay.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let mut note = |b: &gst::BufferRef| {
                    if key_pts.lock().unwrap().contains(&b.pts())
                        && let Ok(map) = b.map_readable()
                        && map.len() >= 8
                    {
                        let ts = u32::from_be_bytes([map[4], map[5], map[6], map[7]]);
                        let mut timestamps = timestamps.lock().unwrap();
                        if timestamps.last() != Some(&ts) {
                            timestamps.push(ts);
                        }
                    }
                };
                match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => note(b),
                    Some(gst::PadProbeData::BufferList(l)) => l.iter().for_each(&mut note),
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    pipeline.set_state(gst::State::Playing).expect("publisher starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(u64::from(a.seconds) + 30);
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let types = [gst::MessageType::Error, gst::MessageType::Application];
    let result = match bus.timed_pop_filtered(gst::ClockTime::from_nseconds(left.as_nanos() as u64), &types) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(format!("{} ({:?})", e.error(), e.debug())),
            _ => {
                // Let the last packets and their retransmissions go out.
                std::thread::sleep(std::time::Duration::from_secs(1));
                Ok(())
            }
        },
        None => Err("timed out".to_string()),
    };
    // Stopping the sink ends the session with DELETE.
    pipeline.set_state(gst::State::Null).unwrap();
    match result {
        Ok(()) => println!(
            "{{\"ok\":true,\"frames_sent\":{},\"key_timestamps\":{:?}}}",
            sent.load(Ordering::Relaxed),
            key_timestamps.lock().unwrap()
        ),
        Err(e) => {
            println!("{{\"ok\":false,\"error\":{:?},\"frames_sent\":{}}}", e, sent.load(Ordering::Relaxed));
            std::process::exit(1);
        }
    }
}
