//! `whipcast check FILE...`: decodes each file to the end and prints one JSON line: the codecs
//! the container holds, the decoded video frames and size, audio samples, duration, errors.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;

#[derive(Default)]
struct Counts {
    video_frames: AtomicU64,
    audio_samples: AtomicU64,
    last_end: AtomicU64,
    video_size: Mutex<Option<(i32, i32)>>,
    codecs: Mutex<Vec<String>>,
}

pub fn run(files: &[std::path::PathBuf]) -> Result<(), String> {
    let mut failed = 0;
    for file in files {
        let line = match check(file) {
            Ok(line) => line,
            Err(e) => {
                failed += 1;
                format!(
                    "{{\"file\":{},\"ok\":false,\"error\":{}}}",
                    json_string(&file.to_string_lossy()),
                    json_string(&e)
                )
            }
        };
        println!("{line}");
    }
    if failed > 0 { Err(format!("{failed} of {} files do not decode", files.len())) } else { Ok(()) }
}

fn check(file: &Path) -> Result<String, String> {
    let uri =
        glib::filename_to_uri(file.canonicalize().map_err(|e| e.to_string())?, None).map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::new();
    let decodebin =
        gst::ElementFactory::make("uridecodebin").property("uri", uri.as_str()).build().map_err(|e| e.to_string())?;
    pipeline.add(&decodebin).map_err(|e| e.to_string())?;
    let counts = Arc::new(Counts::default());
    {
        let counts = counts.clone();
        let pipeline_weak = pipeline.downgrade();
        decodebin.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else { return };
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let video = caps.structure(0).is_some_and(|s| s.name().starts_with("video/"));
            let sink = gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap();
            pipeline.add(&sink).unwrap();
            let counts = counts.clone();
            sink.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let Some(buffer) = info.buffer() else { return gst::PadProbeReturn::Ok };
                if let Some(end) = buffer.pts().map(|p| p + buffer.duration().unwrap_or_default()) {
                    counts.last_end.fetch_max(end.nseconds(), Ordering::Relaxed);
                }
                if video {
                    counts.video_frames.fetch_add(1, Ordering::Relaxed);
                    let mut size = counts.video_size.lock().unwrap();
                    if size.is_none() {
                        *size = pad.current_caps().and_then(|c| {
                            let s = c.structure(0)?;
                            Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
                        });
                    }
                } else if let Some(info) = pad.current_caps().and_then(|c| gst_audio_frames(&c, buffer.size())) {
                    counts.audio_samples.fetch_add(info, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
            sink.sync_state_with_parent().unwrap();
            let _ = pad.link(&sink.static_pad("sink").unwrap());
        });
    }
    {
        let counts = counts.clone();
        // Codec names from the demuxer's pads (e.g. video/x-av1, audio/x-opus).
        decodebin.connect_closure(
            "deep-element-added",
            false,
            glib::closure!(move |_: &gst::Bin, _: &gst::Bin, element: &gst::Element| {
                let is_demuxer = element.factory().is_some_and(|f| f.klass().contains("Demuxer"));
                if is_demuxer {
                    let counts = counts.clone();
                    element.connect_pad_added(move |_, pad| {
                        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
                        if let Some(s) = caps.structure(0) {
                            counts.codecs.lock().unwrap().push(s.name().to_string());
                        }
                    });
                }
            }),
        );
    }
    pipeline.set_state(gst::State::Playing).map_err(|_| "the file does not play".to_string())?;
    let bus = pipeline.bus().unwrap();
    let mut errors = Vec::new();
    for message in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                errors.push(e.error().to_string());
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(e) = errors.first() {
        return Err(e.clone());
    }
    let size = *counts.video_size.lock().unwrap();
    let codecs = counts.codecs.lock().unwrap().iter().map(|c| json_string(c)).collect::<Vec<_>>().join(",");
    Ok(format!(
        "{{\"file\":{},\"ok\":true,\"codecs\":[{codecs}],\"video_frames\":{},\"width\":{},\"height\":{},\"audio_samples\":{},\"duration_s\":{:.3}}}",
        json_string(&file.to_string_lossy()),
        counts.video_frames.load(Ordering::Relaxed),
        size.map_or(0, |s| s.0),
        size.map_or(0, |s| s.1),
        counts.audio_samples.load(Ordering::Relaxed),
        counts.last_end.load(Ordering::Relaxed) as f64 / 1e9,
    ))
}

/// Samples in a raw audio buffer of `bytes` bytes.
fn gst_audio_frames(caps: &gst::CapsRef, bytes: usize) -> Option<u64> {
    let s = caps.structure(0)?;
    let channels = s.get::<i32>("channels").ok()? as usize;
    let width = match s.get::<&str>("format").ok()? {
        f if f.starts_with("S16") || f.starts_with("U16") => 2,
        f if f.starts_with("F32") || f.starts_with("S32") => 4,
        f if f.starts_with("F64") => 8,
        f if f.starts_with("S8") || f.starts_with("U8") => 1,
        _ => return None,
    };
    Some((bytes / (width * channels.max(1))) as u64)
}

pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            c if (c as u32) < 0x20 => out += &format!("\\u{:04x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
