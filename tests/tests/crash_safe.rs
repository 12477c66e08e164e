//! Recordings that survive a crash: `mux ! fragmentsync ! filesink` writes whole MP4 fragments and
//! Matroska elements, so the file a crash leaves behind (what is on disk between two writes)
//! decodes with no error in ffmpeg and in GStreamer, up to its last second or so.
//!
//! A probe on filesink's pad logs what it is told to write and where (byte segments move its
//! position, as they move filesink's); after the run the log is replayed to give the file as it
//! was right before each write: every state the file goes through, exactly what a crash at that
//! moment leaves. The probe only keeps the bytes (copying the whole file there, as this test
//! once did, held the muxer's thread for as long as the copy took, and a busy machine counted
//! that against the product).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use whipcast_tests::*;

const FRAMES: u32 = 180;
/// What a crash may cost: at most this much video before the newest frame encoded when it
/// came. Counted in the video's own time, not the wall clock's: while the machine does not run
/// the process at all (0.5 s stalls seen with 5 tests beside `stress-ng --cpu 2` on 2 cores), the
/// encoder stops as the muxer does, and what nothing could write is no loss of the product's.
const MAX_LOSS: Duration = Duration::from_millis(1500);

/// A frame as it left the encoder: when, and its time in the video.
#[derive(Clone, Copy)]
struct Encoded {
    at: Instant,
    pts: Duration,
}

/// How many frames a crash at `moment` must not lose: those at least [`MAX_LOSS`] older (in the
/// video) than the newest frame encoded before `moment`.
fn owed(encoded: &[Encoded], moment: Instant) -> u64 {
    let Some(newest) = encoded.iter().filter(|f| f.at <= moment).map(|f| f.pts).max() else { return 0 };
    encoded.iter().filter(|f| f.pts + MAX_LOSS <= newest).count() as u64
}

struct Snapshot {
    path: PathBuf,
    /// When the write that followed this state was handed to filesink: the crash's moment.
    taken: Instant,
    /// That write's size.
    next_write: usize,
}

/// One write as filesink is given it: at `at` in the file, when.
struct Write {
    at: u64,
    data: Vec<u8>,
    when: Instant,
}

/// The file before each of `writes` (replayed in order, as filesink applies them), written out
/// next to `name`, and the file after the last.
fn snapshots(name: &str, writes: &[Write]) -> (Vec<Snapshot>, Vec<u8>) {
    let mut file = Vec::new();
    let snapshots = writes
        .iter()
        .enumerate()
        .map(|(i, write)| {
            let path = output_path(&format!("{name}.cut{i}"));
            std::fs::write(&path, &file).unwrap();
            let at = write.at as usize;
            if file.len() < at + write.data.len() {
                file.resize(at + write.data.len(), 0);
            }
            file[at..at + write.data.len()].copy_from_slice(&write.data);
            Snapshot { path, taken: write.when, next_write: write.data.len() }
        })
        .collect();
    (snapshots, file)
}

/// Records 6 s of live video and Opus through `chain` (muxer named `mux`, then the sink
/// elements). Returns the file before each write, each frame's encode time, and the final file.
fn record(name: &str, encoder: &str, chain: &str) -> (Vec<Snapshot>, Vec<Encoded>, PathBuf) {
    init();
    let file = output_path(name);
    let _ = std::fs::remove_file(&file);
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc is-live=true pattern=ball num-buffers={FRAMES} \
           ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! {encoder} name=enc \
           ! {chain} location={file} \
         audiotestsrc is-live=true wave=ticks samplesperbuffer=960 num-buffers=300 ! opusenc ! mux.",
        file = file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();

    let encoded = Arc::new(Mutex::new(Vec::new()));
    let times = encoded.clone();
    pipeline.by_name("enc").unwrap().static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
            times.lock().unwrap().push(Encoded { at: Instant::now(), pts: pts.into() });
        }
        gst::PadProbeReturn::Ok
    });
    // filesink's position, and the writes so far.
    let writes = Arc::new(Mutex::new((0u64, Vec::<Write>::new())));
    let logged = writes.clone();
    let filesink = pipeline.by_name("sink").unwrap();
    filesink.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let when = Instant::now();
            let data = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => b.map_readable().unwrap().to_vec(),
                Some(gst::PadProbeData::BufferList(l)) => {
                    l.iter().flat_map(|b| b.map_readable().unwrap().to_vec()).collect()
                }
                Some(gst::PadProbeData::Event(e)) => {
                    // filesink writes on from a byte segment's start.
                    if let gst::EventView::Segment(s) = e.view()
                        && let Some(start) = s.segment().downcast_ref::<gst::format::Bytes>().and_then(|s| s.start())
                    {
                        logged.lock().unwrap().0 = *start;
                    }
                    return gst::PadProbeReturn::Ok;
                }
                _ => return gst::PadProbeReturn::Ok,
            };
            let (position, log) = &mut *logged.lock().unwrap();
            log.push(Write { at: *position, data, when });
            *position += log.last().unwrap().data.len() as u64;
            gst::PadProbeReturn::Ok
        },
    );
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(60));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (snapshots, replayed) = snapshots(name, &writes.lock().unwrap().1);
    // The log holds every write, where filesink made it.
    assert!(replayed == std::fs::read(&file).unwrap(), "the replayed writes are not the file on disk");
    let encoded = encoded.lock().unwrap().clone();
    (snapshots, encoded, file)
}

/// When each write and each frame's encoding came (ms from the first frame), for failures.
fn timeline(snapshots: &[Snapshot], encoded: &[Encoded]) -> String {
    let ms = |t: Instant| t.saturating_duration_since(encoded[0].at).as_millis();
    let writes: Vec<String> = snapshots.iter().map(|s| format!("{}: {} B", ms(s.taken), s.next_write)).collect();
    let frames: Vec<u128> = encoded.iter().map(|f| ms(f.at)).collect();
    format!("writes at {writes:?} ms; frames encoded at {frames:?} ms")
}

/// Every snapshot decodes cleanly (ffmpeg and GStreamer) and holds the frames it [`owed`]; the
/// finished file holds every frame.
fn check(name: &str, encoder: &str, chain: &str) {
    let (snapshots, encoded, file) = record(name, encoder, chain);
    let mut checked = 0;
    for snapshot in &snapshots {
        let due = owed(&encoded, snapshot.taken);
        if due == 0 {
            // Nothing was owed yet (the file may still be empty).
            continue;
        }
        checked += 1;
        let decoded = ffmpeg_decode(&snapshot.path);
        assert!(
            decoded.errors.is_empty(),
            "{}: {:?} ({due} frames owed; {})",
            snapshot.path.display(),
            decoded.errors,
            timeline(&snapshots, &encoded)
        );
        assert!(
            decoded.video_frames >= due,
            "{}: {} frames decode, {due} were {MAX_LOSS:?} older than the newest encoded before the cut ({})",
            snapshot.path.display(),
            decoded.video_frames,
            timeline(&snapshots, &encoded)
        );
        let gst = decode_file(&snapshot.path);
        assert!(gst.report.errors.is_empty(), "{}: {:?}", snapshot.path.display(), gst.report.errors);
        assert!(gst.frames as u64 >= due, "{}: GStreamer decodes {} frames", snapshot.path.display(), gst.frames);
    }
    // 6 s of writes: MP4 fragments every second, Matroska elements every half second.
    assert!(checked >= 3, "{checked} of {} cuts owed frames", snapshots.len());
    let whole = ffmpeg_decode(&file);
    assert!(whole.errors.is_empty(), "{:?}", whole.errors);
    assert_eq!(whole.video_frames, u64::from(FRAMES));
    // And in a browser: every cut that owed frames plays to its end in Chromium.
    let owed: Vec<(&PathBuf, u64)> =
        snapshots.iter().map(|s| (&s.path, owed(&encoded, s.taken))).filter(|&(_, due)| due > 0).collect();
    let played = chromium_plays(owed.iter().map(|(p, _)| p.as_path()));
    for ((path, due), frames) in owed.iter().zip(played) {
        assert!(frames >= *due, "{}: Chromium plays {frames} frames, {due} were owed", path.display());
    }
    for snapshot in snapshots {
        let _ = std::fs::remove_file(snapshot.path);
    }
}

#[test]
fn fragmented_mp4_cut_at_any_write_decodes() {
    check(
        "cut-h264.mp4",
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=2000 ! h264parse",
        "mp4mux name=mux fragment-duration=1000 ! fragmentsync ! filesink name=sink",
    );
}

#[test]
fn webm_cut_at_any_write_decodes() {
    check(
        "cut-vp8.webm",
        "vp8enc deadline=1 keyframe-max-dist=60 target-bitrate=2000000",
        "webmmux name=mux ! fragmentsync ! filesink name=sink",
    );
}

#[test]
fn mkv_with_one_key_frame_cut_at_any_write_decodes() {
    // Chromium sends one key frame per session: a single cluster that grows for minutes.
    check(
        "cut-one-gop.mkv",
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=100000 bitrate=2000 ! h264parse",
        "matroskamux name=mux ! fragmentsync ! filesink name=sink",
    );
}

#[test]
fn fragmentsync_writes_whole_units_and_asks_for_fsync() {
    // Each list it pushes ends where the container allows a cut, and its last buffer carries
    // SYNC_AFTER (filesink then fsyncs).
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
           ! x264enc speed-preset=ultrafast key-int-max=30 ! h264parse \
           ! mp4mux fragment-duration=500 ! fragmentsync interval=0 ! fakesink name=out sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let writes = Arc::new(Mutex::new(Vec::<(Vec<u8>, bool)>::new()));
    let seen = writes.clone();
    let sink = pipeline.by_name("out").unwrap();
    sink.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let buffers: Vec<gst::Buffer> = match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => vec![b.clone()],
                Some(gst::PadProbeData::BufferList(l)) => l.iter_owned().collect(),
                _ => vec![],
            };
            let mut data = Vec::new();
            for b in &buffers {
                data.extend_from_slice(&b.map_readable().unwrap());
            }
            let synced = buffers.last().is_some_and(|b| b.flags().contains(gst::BufferFlags::SYNC_AFTER));
            seen.lock().unwrap().push((data, synced));
            gst::PadProbeReturn::Ok
        },
    );
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(60));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let writes = writes.lock().unwrap();
    // appsink is not seekable: no patches, the writes are the whole file in order.
    let mut boxes = Vec::new();
    for (data, synced) in writes.iter() {
        assert!(synced, "every write is marked for fsync");
        let mut at = 0;
        while at < data.len() {
            let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            boxes.push(String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned());
            at += size;
        }
        assert_eq!(at, data.len(), "a write ends where a box ends: {boxes:?}");
        assert_ne!(boxes.last().map(String::as_str), Some("moof"), "a moof is written with its mdat");
    }
    let fragments = boxes.iter().filter(|b| *b == "moof").count();
    assert!(fragments >= 5, "{boxes:?}");
}

/// Chromium lowers and raises its resolution with the CPU and the bandwidth: a new SPS, so mp4mux
/// adds a sample description and, at the end, rewrites its `moov` at another size than the one
/// it wrote first. The file must still decode whole, through the change.
#[test]
fn fragmented_mp4_with_a_resolution_change_decodes_whole() {
    init();
    let file = output_path("resolution-change.mp4");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=90 pattern=ball ! videoscale ! capsfilter name=size \
           caps=video/x-raw,format=I420,width=640,height=360,framerate=30/1 \
           ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max=30 ! h264parse \
           ! mp4mux fragment-duration=1000 ! fragmentsync ! filesink location={}",
        file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let size = pipeline.by_name("size").unwrap();
    let frames = Arc::new(Mutex::new(0u32));
    size.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let mut n = frames.lock().unwrap();
        *n += 1;
        if *n == 45 {
            let caps = gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", 320)
                .field("height", 180)
                .field("framerate", gst::Fraction::new(30, 1))
                .build();
            pad.parent_element().unwrap().set_property("caps", caps);
        }
        gst::PadProbeReturn::Ok
    });
    let report = run_to_eos(&pipeline, gst::ClockTime::from_seconds(60));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let decoded = ffmpeg_decode(&file);
    assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
    assert_eq!(decoded.video_frames, 90);
    let decoded = decode_file(&file);
    assert!(decoded.report.errors.is_empty(), "{:?}", decoded.report.errors);
    assert_eq!(decoded.frames, 90);
}
