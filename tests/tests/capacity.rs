//! The capacity benchmark's short run (`cargo bench --bench capacity` is the long one): two
//! OBS-like 720p30 publishers of a face clip into one `whipcast serve` with facemark on, 5 s
//! measured. Whatever the machine's load, nothing is lost and every stage is seen working; the
//! real-time verdict is printed (it is the benchmark's answer, not a property of the code).

use std::sync::Mutex;
use std::time::Duration;

use whipcast_tests::capacity::{self, Codec, STAGES};

/// One run at a time: each is a measurement of the whole machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn two_publishers(codec: Codec) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let whipcast = whipcast_tests::workspace_binary("whipcast");
    let run = capacity::run(&whipcast, &[], codec, 2, Duration::from_secs(5));
    println!("{}", run.summary());
    assert_eq!(run.sessions.len(), 2, "{run:?}");
    for session in &run.sessions {
        assert!(session.sent >= 200, "{session:?}");
        assert_eq!(session.in_file, session.sent, "every frame sent is in the file: {session:?}");
        assert!(session.window.recorded > 0 && session.window.analysed > 0, "{session:?}");
        // The clip has a face in every frame, small for the detector's view of the whole frame
        // (it is found in a tile of it): facemark finds it in the frames it analyses.
        let face_share = session.window.with_face as f64 / session.window.analysed as f64;
        assert!(face_share >= capacity::FACE_SHARE, "a face in {:.0} %: {session:?}", 100.0 * face_share);
        assert!(session.window.snapshots > 0, "{session:?}");
    }
    for stage in STAGES {
        assert!(run.stages.get(stage) > Duration::ZERO, "no CPU seen for {}: {run:?}", stage.label());
    }
    // The marking threads (conversion, facemark, its inference thread, snapshots) yield to the
    // others when the cores are busy; recording and decoding keep whipcast's own priority (that of
    // its main thread: the tests may run under `nice`).
    let base = run.niceness.iter().find(|(name, _)| name == "whipcast").map(|(_, nice)| *nice).unwrap_or(0);
    let marking: Vec<&(String, i64)> =
        run.niceness.iter().filter(|(name, _)| name.starts_with("face-mark") || name == "facemark-infer").collect();
    assert!(marking.len() >= 2 && marking.iter().all(|(_, nice)| *nice > base), "{:?}", run.niceness);
    let others = run
        .niceness
        .iter()
        .filter(|(name, _)| name.starts_with("in-") || name.starts_with("to-mux") || name.starts_with("face-decode"));
    assert!(others.clone().count() >= 2 && others.clone().all(|(_, nice)| *nice == base), "{:?}", run.niceness);
    // Every thread of whipcast was counted in some stage: the split adds up to the process (whose
    // time /proc counts in 10 ms ticks).
    let (total, process) = (run.stages.total().as_secs_f64(), run.server.as_secs_f64());
    assert!((total - process).abs() <= 0.05 + process * 0.05, "stages {total} s of whipcast's {process} s");
}

#[test]
fn two_h264_publishers_are_recorded_whole_and_every_stage_is_measured() {
    two_publishers(Codec::H264);
}

#[test]
fn two_av1_publishers_are_recorded_whole_and_every_stage_is_measured() {
    two_publishers(Codec::Av1);
}
