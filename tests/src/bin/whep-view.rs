//! A WHEP viewer made of gst-plugins-rs's `whepsrc`, run by the tests as a separate process, as a
//! user's player would be: it watches for a while and says what it decoded.
//!
//! usage: whep-view URL [--seconds N] [--token T] [--codec h264|vp8|vp9|av1]
//! Prints one JSON line: {"ok":true,"frames":N,"first_frame_ms":T,"width":W,"height":H,
//! "audio_buffers":M}: video frames decoded (the first T ms after the start, with the size of the
//! last), audio buffers decoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gst::glib;
use gst::prelude::*;

fn main() {
    let (mut url, mut seconds, mut token, mut codec) = (String::new(), 10u64, None::<String>, None::<String>);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => seconds = it.next().and_then(|s| s.parse().ok()).expect("--seconds N"),
            "--token" => token = it.next(),
            "--codec" => codec = it.next(),
            other => url = other.to_owned(),
        }
    }
    assert!(!url.is_empty(), "usage: whep-view URL [--seconds N] [--token T] [--codec NAME]");
    gst::init().unwrap();
    gstwebrtchttp::plugin_register_static().unwrap();
    gstrsrtp::plugin_register_static().unwrap();

    let pipeline = gst::Pipeline::new();
    let source = gst::ElementFactory::make("whepsrc").property("whep-endpoint", &url).build().unwrap();
    if let Some(token) = &token {
        source.set_property("auth-token", token);
    }
    if let Some(codec) = &codec {
        let name = codec.to_ascii_uppercase();
        let caps = gst::Caps::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", name)
            .field("payload", 101i32)
            .field("clock-rate", 90000i32)
            .build();
        source.set_property("video-caps", caps);
    }
    // libnice skips loopback addresses unless told: the tests watch over 127.0.0.1.
    if let Some(bin) = source.downcast_ref::<gst::Bin>() {
        bin.connect_deep_element_added(|_, _, element| {
            if element.factory().is_some_and(|f| f.name() == "webrtcbin") {
                let ice = element.property::<glib::Object>("ice-agent");
                let _ = ice.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
            }
        });
    }
    pipeline.add(&source).unwrap();

    let frames = Arc::new(AtomicU64::new(0));
    let audio = Arc::new(AtomicU64::new(0));
    let size = Arc::new(std::sync::Mutex::new((0i32, 0i32)));
    let started = std::time::Instant::now();
    let first_frame_ms = Arc::new(AtomicU64::new(0));
    {
        let (pipeline, frames, audio, size) = (pipeline.downgrade(), frames.clone(), audio.clone(), size.clone());
        let first_frame_ms = first_frame_ms.clone();
        source.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline.upgrade() else { return };
            let decode = gst::ElementFactory::make("decodebin").build().unwrap();
            pipeline.add(&decode).unwrap();
            let (pipeline_weak, frames, audio, size) =
                (pipeline.downgrade(), frames.clone(), audio.clone(), size.clone());
            let first_frame_ms = first_frame_ms.clone();
            decode.connect_pad_added(move |_, pad| {
                let Some(pipeline) = pipeline_weak.upgrade() else { return };
                let sink = gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap();
                pipeline.add(&sink).unwrap();
                sink.sync_state_with_parent().unwrap();
                pad.link(&sink.static_pad("sink").unwrap()).unwrap();
                let (frames, audio, size, first_frame_ms) =
                    (frames.clone(), audio.clone(), size.clone(), first_frame_ms.clone());
                pad.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                    let caps = pad.current_caps();
                    let is_video =
                        caps.as_ref().and_then(|c| c.structure(0)).is_some_and(|s| s.name().starts_with("video/"));
                    if is_video {
                        if frames.fetch_add(1, Ordering::Relaxed) == 0 {
                            first_frame_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                        }
                        if let Some(s) = pad.current_caps().as_ref().and_then(|c| c.structure(0)) {
                            *size.lock().unwrap() = (s.get("width").unwrap_or(0), s.get("height").unwrap_or(0));
                        }
                    } else {
                        audio.fetch_add(1, Ordering::Relaxed);
                    }
                    gst::PadProbeReturn::Ok
                });
            });
            decode.sync_state_with_parent().unwrap();
            pad.link(&decode.static_pad("sink").unwrap()).unwrap();
        });
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut error = None;
    while std::time::Instant::now() < deadline {
        if let Some(message) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(100), &[gst::MessageType::Error]) {
            if let gst::MessageView::Error(e) = message.view() {
                error = Some(format!("{} ({:?})", e.error(), e.debug()));
            }
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let (width, height) = *size.lock().unwrap();
    match error {
        None => println!(
            "{{\"ok\":true,\"frames\":{},\"first_frame_ms\":{},\"width\":{width},\"height\":{height},\"audio_buffers\":{}}}",
            frames.load(Ordering::Relaxed),
            first_frame_ms.load(Ordering::Relaxed),
            audio.load(Ordering::Relaxed)
        ),
        Some(e) => println!("{{\"ok\":false,\"error\":{e:?}}}"),
    }
}
