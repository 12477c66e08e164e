//! The clip the publishers send: the codecs, and the face clip encoded once for each, OBS-like.

use std::path::{Path, PathBuf};

use gst::prelude::*;

use super::FPS;
use crate::{init, run_to_eos};

/// The clip: 10 s, a key frame every 2 s (OBS's recommended interval), 1280x720.
const CLIP_FRAMES: u32 = 300;
const KEY_INTERVAL: u32 = 60;
const WIDTH: i32 = 1280;
const HEIGHT: i32 = 720;
/// OBS's default video bitrate, kbit/s.
const BITRATE_KBPS: u32 = 2500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    Av1,
}

impl Codec {
    /// The name bench_publish.py and whipcast use.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Av1 => "AV1",
        }
    }

    /// The clip's encoder, OBS-like: no B-frames, a fixed key-frame interval, about OBS's default
    /// bitrate.
    fn encoder(self) -> String {
        match self {
            Codec::H264 => format!(
                "x264enc tune=zerolatency speed-preset=veryfast bitrate={BITRATE_KBPS} key-int-max={KEY_INTERVAL} \
                 bframes=0 aud=true option-string=scenecut=0 ! h264parse config-interval=-1 ! \
                 video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline"
            ),
            // libaom's realtime rate control aborts (an assertion in 3.6) or overshoots on this
            // content: a fixed quantizer sets the rate (about 2.5 Mbit/s here) instead.
            Codec::Av1 => format!(
                "av1enc min-quantizer=53 max-quantizer=53 cpu-used=8 usage-profile=realtime threads=2 \
                 keyframe-max-dist={KEY_INTERVAL} ! av1parse ! video/x-av1,stream-format=obu-stream,alignment=tu"
            ),
        }
    }

    /// Demuxes whipcast's recording of this codec to its video frames.
    pub(super) fn demuxer(self) -> &'static str {
        match self {
            Codec::H264 => "qtdemux ! video/x-h264",
            Codec::Av1 => "matroskademux ! video/x-av1",
        }
    }
}

/// `target/capacity`, where the clips are kept between runs.
fn clip_dir() -> PathBuf {
    crate::build_dir().parent().map(Path::to_path_buf).unwrap_or_default().join("capacity")
}

/// The clip for `codec` (encoded once, then kept): smpte bars scrolling behind the astronaut
/// photo, which swings left and right once per clip (so the loop is seamless).
pub fn face_clip(codec: Codec) -> PathBuf {
    let path =
        clip_dir().join(format!("face-720p30-{}.{}", codec.name(), if codec == Codec::H264 { "h264" } else { "obu" }));
    if path.metadata().is_ok_and(|m| m.len() > 0) {
        return path;
    }
    init();
    std::fs::create_dir_all(clip_dir()).expect("target/capacity is writable");
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gst-plugin-facemark/tests/data/astronaut.png");
    let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
    let raw = format!("video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate=30/1");
    let launch = format!(
        "compositor name=mix ! {raw} ! {} ! filesink location={} \
         videotestsrc pattern=smpte horizontal-speed=2 num-buffers={CLIP_FRAMES} ! {raw} ! mix.sink_0 \
         filesrc location={} ! pngdec ! imagefreeze num-buffers={CLIP_FRAMES} ! videoconvert ! \
         video/x-raw,framerate=30/1 ! mix.sink_1",
        codec.encoder(),
        temporary.display(),
        image.display()
    );
    let pipeline = gst::parse::launch(&launch).expect("the clip pipeline").downcast::<gst::Pipeline>().unwrap();
    let mix = pipeline.by_name("mix").unwrap();
    let face = mix.static_pad("sink_1").expect("the face's pad");
    face.set_property("ypos", 104i32);
    face.add_probe(gst::PadProbeType::BUFFER, |pad, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            let turn = pts.seconds_f64() * FPS / CLIP_FRAMES as f64 * std::f64::consts::TAU;
            let middle = f64::from(WIDTH - 512) / 2.0;
            pad.set_property("xpos", (middle + middle * turn.sin()) as i32);
        }
        gst::PadProbeReturn::Ok
    });
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(600));
    assert!(report.errors.is_empty(), "encoding the {} clip: {:?}", codec.name(), report.errors);
    std::fs::rename(&temporary, &path).unwrap();
    path
}
