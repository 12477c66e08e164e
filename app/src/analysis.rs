//! A recording's facemark results going out: each analysed frame (facemark's element message) to
//! `/events/<stream>` and, on the file's own timeline, to `<name>.landmarks.jsonl` beside the
//! file; facemark's inference times into the metrics.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use crate::faces::{Face, Frame};
use crate::metrics::{Histogram, INFERENCE_BUCKETS};
use crate::served::EventsHub;

/// facemark's times and drops over every session, for `/metrics`.
#[derive(Debug, Clone)]
pub struct Totals {
    pub inference_seconds: Histogram,
    pub dropped_inferences: u64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals { inference_seconds: Histogram::new(&INFERENCE_BUCKETS), dropped_inferences: 0 }
    }
}

/// Where one recording's results go.
pub struct Output {
    stream: String,
    events: Arc<EventsHub>,
    landmarks: Mutex<Option<LineWriter<File>>>,
    /// Where the file's timeline starts (ns of the pipeline's), once known.
    zero: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    totals: Arc<Mutex<Totals>>,
    seen: Mutex<Seen>,
}

/// What the last message said: a result is new when its frame is (facemark passes a busy
/// worker's frames on with the latest result), and its stats counters moved by so much.
#[derive(Default)]
struct Seen {
    faces_pts: Option<u64>,
    inferences: u64,
    seconds: f64,
    dropped: u64,
}

impl Output {
    pub fn new(
        stream: &str,
        events: Arc<EventsHub>,
        landmarks_file: &Path,
        zero: impl Fn() -> Option<u64> + Send + Sync + 'static,
        totals: Arc<Mutex<Totals>>,
    ) -> Output {
        let landmarks = match File::create(landmarks_file) {
            Ok(file) => Some(LineWriter::new(file)),
            Err(e) => {
                println!("{}: not written: {e}", landmarks_file.display());
                None
            }
        };
        Output {
            stream: stream.to_owned(),
            events,
            landmarks: Mutex::new(landmarks),
            zero: Box::new(zero),
            totals,
            seen: Mutex::default(),
        }
    }

    /// A `facemark` message of this recording's facemark (with its `stats`).
    pub fn message(&self, message: &gst::StructureRef, stats: &gst::StructureRef) {
        self.count(stats);
        let Some(frame) = frame_of(message) else { return };
        {
            let mut seen = self.seen.lock().unwrap();
            if seen.faces_pts == Some(frame.pts) {
                return;
            }
            seen.faces_pts = Some(frame.pts);
        }
        self.events.publish(&self.stream, &frame);
        if let Some(zero) = (self.zero)() {
            let mut landmarks = self.landmarks.lock().unwrap();
            if let Some(file) = landmarks.as_mut()
                && writeln!(file, "{}", frame.at(frame.pts.saturating_sub(zero)).json()).is_err()
            {
                println!("the landmarks of {} are no longer written (the disk?)", self.stream);
                *landmarks = None;
            }
        }
    }

    /// The inferences run and dropped since the last message, into the totals.
    fn count(&self, stats: &gst::StructureRef) {
        let (Ok(inferences), Ok(seconds), Ok(dropped)) = (
            stats.get::<u64>("inferences"),
            stats.get::<f64>("inference-seconds"),
            stats.get::<u64>("dropped-inferences"),
        ) else {
            return;
        };
        let mut seen = self.seen.lock().unwrap();
        let runs = inferences.saturating_sub(seen.inferences);
        let mut totals = self.totals.lock().unwrap();
        if runs > 0 {
            let each = (seconds - seen.seconds).max(0.0) / runs as f64;
            for _ in 0..runs {
                totals.inference_seconds.observe(each);
            }
        }
        totals.dropped_inferences += dropped.saturating_sub(seen.dropped);
        (seen.inferences, seen.seconds, seen.dropped) = (inferences, seconds, dropped);
    }
}

/// The analysed frame a `facemark` message reports: the frame its faces were found in.
fn frame_of(message: &gst::StructureRef) -> Option<Frame> {
    let pts = message.get::<u64>("faces-timestamp").ok().filter(|&t| t != u64::MAX)?;
    let width = u32::try_from(message.get::<i32>("frame-width").ok()?).ok()?;
    let height = u32::try_from(message.get::<i32>("frame-height").ok()?).ok()?;
    let faces = message.get::<gst::Array>("faces").ok()?;
    let faces = faces
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter_map(|f| {
            let number = |name: &str| f.get::<f64>(name).ok();
            let values: Vec<f64> = f.get::<gst::Array>("landmarks").ok()?.iter().filter_map(|v| v.get().ok()).collect();
            Some(Face {
                score: number("score")?,
                bbox: [number("x")?, number("y")?, number("width")?, number("height")?],
                landmarks: values.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect(),
            })
        })
        .collect();
    Some(Frame { pts, width, height, faces })
}

/// Marks facemark elements with the output their messages go to.
const OUTPUT_KEY: &str = "whipcast-analysis";

/// Sends `facemark`'s messages to `output` (they are handled where they are posted).
pub fn attach(facemark: &gst::Element, output: Arc<Output>) {
    facemark.set_property("emit-messages", true);
    // SAFETY: the key is only ever set and read with this type.
    unsafe { facemark.set_data(OUTPUT_KEY, output) };
}

/// A bus message, if it is a `facemark` message of an element given an output: handled.
pub fn handle(message: &gst::Message) -> bool {
    let Some(s) = message.structure().filter(|s| s.name() == "facemark") else { return false };
    let Some(source) = message.src().and_then(|o| o.downcast_ref::<gst::Element>()) else { return false };
    // SAFETY: as in `attach`.
    let Some(output) = (unsafe { source.data::<Arc<Output>>(OUTPUT_KEY) }) else { return false };
    let output = unsafe { output.as_ref() }.clone();
    let stats = source.property::<gst::Structure>("stats");
    output.message(s, &stats);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(faces_pts: u64, x: f64) -> gst::Structure {
        let landmarks = gst::Array::new([x, 20.0, -1.0, x + 1.0, 21.0, 0.5]);
        let face = gst::Structure::builder("face")
            .field("score", 0.9)
            .field("x", x)
            .field("y", 10.0)
            .field("width", 50.0)
            .field("height", 60.0)
            .field("landmarks", landmarks)
            .build();
        gst::Structure::builder("facemark")
            .field("timestamp", faces_pts + 33)
            .field("faces-timestamp", faces_pts)
            .field("frame-width", 640i32)
            .field("frame-height", 360i32)
            .field("faces", gst::Array::new([face]))
            .build()
    }

    fn stats(inferences: u64, seconds: f64, dropped: u64) -> gst::Structure {
        gst::Structure::builder("stats")
            .field("inferences", inferences)
            .field("inference-seconds", seconds)
            .field("dropped-inferences", dropped)
            .build()
    }

    #[test]
    fn each_new_result_once_to_the_events_and_the_file_on_its_timeline() {
        gst::init().unwrap();
        let folder = std::env::temp_dir().join(format!("whipcast-analysis-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let file = folder.join("s.landmarks.jsonl");
        let hub = Arc::new(EventsHub::new(vec![("s".into(), None)]));
        let Ok(gstwhipsrc::server::Content::Events(mut reader)) = gstwhipsrc::server::Resource::get(hub.as_ref(), "/s")
        else {
            panic!("events")
        };
        let _ = reader.try_recv();
        let totals = Arc::new(Mutex::new(Totals::default()));
        let output = Output::new("s", hub, &file, || Some(1_000), totals.clone());
        output.message(&message(5_000, 100.0), &stats(1, 0.004, 0));
        // The same result passed on with the next frame (a busy worker): not again.
        output.message(&message(5_000, 100.0), &stats(1, 0.004, 1));
        output.message(&message(38_000, 101.5), &stats(3, 0.020, 1));
        let lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(
            "{\"pts\":4000,\"width\":640,\"height\":360,\"faces\":[{\"score\":0.9,\"box\":[100,10,50,60]"
        ));
        assert!(lines[0].ends_with("\"landmarks\":[[100,20,-1],[101,21,0.5]]}]}"), "{}", lines[0]);
        assert!(lines[1].starts_with("{\"pts\":37000,"));
        let event = reader.try_recv().unwrap();
        assert!(event.starts_with(b"data: {\"pts\":5000,"), "events keep the pipeline's time");
        assert!(reader.try_recv().unwrap().starts_with(b"data: {\"pts\":38000,"));
        assert!(reader.try_recv().is_err());
        let totals = totals.lock().unwrap();
        assert_eq!((totals.inference_seconds.count(), totals.dropped_inferences), (3, 1));
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
