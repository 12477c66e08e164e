//! Simulcast ingest with a publisher faithful to OBS 32.1+ (libdatachannel, the library OBS's WHIP
//! output is built on; tests/peers/obs_like/publish.py --layers 3): 1280x720, 852x480 and
//! 426x240, each its own SSRC and rid, all starting at sequence 0 and RTP time 0, no video SSRC
//! in the offer. The publisher checks the answer as OBS does (the layers of the first
//! a=simulcast line) and gives up when it counts fewer. Whatever order the layers' packets
//! arrive in, `simulcast=best` records the 1280x720 layer and `simulcast=all` each layer on the
//! pad of its place in the offer.

use std::sync::{Arc, Mutex};

use gst::prelude::*;
use whipcast_tests::*;

/// One publisher at a time (three encoded layers per frame on a 2-core machine).
static SERIAL: Mutex<()> = Mutex::new(());

const SECONDS: &str = "6";
const SIZES: [(i32, i32); 3] = [(1280, 720), (852, 480), (426, 240)];

struct Server {
    pipeline: gst::Pipeline,
    port: u16,
    files: Vec<std::path::PathBuf>,
    /// session-started's `layers` structure.
    layers: Arc<Mutex<Option<String>>>,
}

/// whipcastsrc (output=encoded, `simulcast`) with pads video_0..video_<pads-1> each recorded
/// to a Matroska file.
fn serve(name: &str, simulcast: &str, pads: usize) -> Server {
    init();
    let port = free_port();
    let files: Vec<_> = (0..pads).map(|i| output_path(&format!("simulcast-{name}-{i}.mkv"))).collect();
    let mut launch =
        format!("whipcastsrc name=w address=127.0.0.1 port={port} timeout=3 output=encoded simulcast={simulcast} ");
    for (i, file) in files.iter().enumerate() {
        launch += &format!("w.video_{i} ! queue ! matroskamux ! filesink location={} ", file.display());
    }
    let pipeline = gst::parse::launch(&launch).unwrap().downcast::<gst::Pipeline>().unwrap();
    let layers = Arc::new(Mutex::new(None));
    let seen = layers.clone();
    // The element message's `layers`: which simulcast layer each pad carries.
    pipeline.bus().unwrap().set_sync_handler(move |_, message| {
        if let Some(s) = message.structure().filter(|s| s.name() == "whipserversrc-session-started") {
            *seen.lock().unwrap() = s.get::<gst::Structure>("layers").ok().map(|l| l.to_string());
        }
        gst::BusSyncReply::Pass
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    Server { pipeline, port, files, layers }
}

fn publish(port: u16, codec: &str, layer_order: &str) -> String {
    report(start_publisher(port, codec, layer_order))
}

fn start_publisher(port: u16, codec: &str, layer_order: &str) -> std::process::Child {
    spawn(&mut publisher_command(port, codec, layer_order))
}

fn publisher_command(port: u16, codec: &str, layer_order: &str) -> std::process::Command {
    let url = format!("http://127.0.0.1:{port}/whip/live");
    let mut command = obs_like_command();
    // With audio, as OBS always sends it (the layers' section is then the second).
    command.args(["--url", &url, "--codec", codec, "--seconds", SECONDS, "--layers", "3", "--audio"]);
    command.args(["--start-at-keyframe", "--layer-order", layer_order]);
    command
}

/// whipcastsrc's per-layer stats while the session is live: (rid, packets received) once
/// every layer has some.
fn layer_stats(server: &Server, layers: usize) -> Vec<(String, u64)> {
    let src = server.pipeline.by_name("w").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stats = src.property::<gst::Structure>("stats");
        let list: Vec<(String, u64)> = stats
            .get::<gst::Structure>("session")
            .ok()
            .and_then(|s| s.get::<gst::Array>("layers").ok())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get::<gst::Structure>().ok())
                    .map(|l| (l.get::<String>("rid").unwrap(), l.get::<u64>("packets-received").unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        if list.len() == layers && list.iter().all(|(_, packets)| *packets > 0) || std::time::Instant::now() > deadline
        {
            return list;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn wait_eos(server: &Server) {
    let bus = server.pipeline.bus().unwrap();
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(15), &[gst::MessageType::Eos, gst::MessageType::Error]);
    server.pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => panic!("recording failed: {} {:?}", e.error(), e.debug()),
        _ => panic!("no EOS after the publisher's DELETE"),
    }
}

/// Decodes a recording: its size and frame count, with no decoder error.
fn decoded(file: &std::path::Path) -> ((i32, i32), usize) {
    let d = decode_file(file);
    assert!(d.report.errors.is_empty(), "{}: {:?}", file.display(), d.report.errors);
    let caps = d.caps.unwrap_or_else(|| panic!("{}: nothing decoded", file.display()));
    let s = caps.structure(0).unwrap();
    ((s.get::<i32>("width").unwrap(), s.get::<i32>("height").unwrap()), d.frames)
}

fn best_records_the_full_size_layer(codec: &str, layer_order: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(&format!("best-{codec}-{}", layer_order.replace(',', "")), "best", 1);
    let text = publish(server.port, codec, layer_order);
    assert_eq!(json_u64(&text, "layersAccepted"), 3, "{text}");
    let sent = json_u64(&text, "framesSent");
    wait_eos(&server);
    assert_eq!(server.layers.lock().unwrap().as_deref(), Some("layers, video_0=(string)best;"));
    let (size, frames) = decoded(&server.files[0]);
    assert_eq!(size, SIZES[0], "the best layer");
    assert!(frames as u64 * 100 >= sent * 95, "{frames} of the {sent} frames of layer 0");
}

#[test]
fn obs_simulcast_h264_best_records_1280x720() {
    best_records_the_full_size_layer("H264", "0,1,2");
}

#[test]
fn obs_simulcast_av1_best_records_1280x720_whatever_the_layer_order() {
    best_records_the_full_size_layer("AV1", "2,1,0");
}

#[test]
fn obs_simulcast_all_records_each_layer_on_the_pad_of_its_place() {
    all_records_each_layer_on_the_pad_of_its_place(&[]);
}

/// Firefox declares every layer's SSRC in its offer (OBS and Chromium declare none), so webrtcbin
/// knows the streams before their packets come: the layers still land on the pads of their place.
#[test]
fn layers_whose_ssrcs_the_offer_declares_as_firefox_does_land_on_their_pads() {
    all_records_each_layer_on_the_pad_of_its_place(&["--declare-layer-ssrcs"]);
}

fn all_records_each_layer_on_the_pad_of_its_place(extra: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(&format!("all-H264{}", extra.concat()), "all", 3);
    // The smallest layer's packets first: arrival order does not name the pads.
    let mut command = publisher_command(server.port, "H264", "2,0,1");
    let publisher = spawn(command.args(extra));
    let layers = layer_stats(&server, 3);
    let rids: Vec<&str> = layers.iter().map(|(rid, _)| rid.as_str()).collect();
    assert_eq!(rids, ["0", "1", "2"], "per-layer stats: {layers:?}");
    assert!(layers.iter().all(|(_, packets)| *packets > 0), "{layers:?}");
    let text = report(publisher);
    let sent = json_u64(&text, "framesSent");
    wait_eos(&server);
    assert_eq!(
        server.layers.lock().unwrap().as_deref(),
        Some("layers, video_0=(string)0, video_1=(string)1, video_2=(string)2;")
    );
    for (i, file) in server.files.iter().enumerate() {
        let (size, frames) = decoded(file);
        assert_eq!(size, SIZES[i], "video_{i} carries rid {i}");
        assert!(frames as u64 * 100 >= sent * 95, "video_{i}: {frames} of {sent} frames");
    }
}

#[test]
fn a_server_that_accepts_fewer_layers_is_refused_by_the_obs_check() {
    // The publisher's own check must be able to fail: an answer without a=simulcast counts 0
    // layers (gst-plugins-rs whipserversrc and webrtcbin alone answer so). Here: the RID
    // extension is not offered, so the layers cannot be told apart and none is accepted.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve("refused", "best", 1);
    let url = format!("http://127.0.0.1:{}/whip/live", server.port);
    let mut command = obs_like_command();
    command.args(["--url", &url, "--codec", "H264", "--seconds", "1", "--layers", "3", "--no-rid-extension"]);
    let out = spawn(&mut command).wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("only accepted 0 simulcast layers"), "{text}");
    let _ = server.pipeline.set_state(gst::State::Null);
}

/// Headless Chromium publishing three simulcast layers (rids f, h, q at full, half and quarter
/// of its 1280x720 camera; the publish page's `simulcast` option).
fn chromium_simulcast(port: u16, codec: &str) -> String {
    let script = peers().join("chromium/publish.mjs");
    assert!(peers().join("chromium/node_modules").exists(), "run tests/peers/chromium/setup.sh (make test does)");
    let url = format!("http://127.0.0.1:{port}/whip/live");
    let mut command = std::process::Command::new("node");
    command.arg(script).args(["--url", &url, "--codec", codec, "--seconds", SECONDS, "--simulcast", "3"]);
    report(spawn(&mut command))
}

fn chromium_layers_are_told_apart(codec: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(&format!("chromium-all-{codec}"), "all", 3);
    let text = chromium_simulcast(server.port, codec);
    wait_eos(&server);
    assert_eq!(
        server.layers.lock().unwrap().as_deref(),
        Some("layers, video_0=(string)f, video_1=(string)h, video_2=(string)q;")
    );
    let widths: Vec<i32> = server
        .files
        .iter()
        .map(|file| {
            let ((width, _), frames) = decoded(file);
            assert!(frames > 30, "{}: {frames} frames ({text})", file.display());
            width
        })
        .collect();
    // f, h, q: each half the size of the one before (Chromium may scale all down under load).
    assert!(widths[0] == widths[1] * 2 && widths[1] == widths[2] * 2, "{widths:?} ({text})");
}

#[test]
fn chromium_simulcast_h264_layers_are_told_apart() {
    chromium_layers_are_told_apart("H264");
}

#[test]
fn chromium_simulcast_vp8_layers_are_told_apart() {
    chromium_layers_are_told_apart("VP8");
}
