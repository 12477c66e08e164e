//! Face marking in the app: the face events and the landmarks file, facemark's properties, and
//! the marking threads' priority.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use whipcast_tests::whipcast::{Server, TOKEN};
use whipcast_tests::*;

use crate::support::{SERIAL, check, files_with, publish_a_face};

/// What facemark finds in a recording's video, frame by frame (its `-m` messages): the first
/// face's landmarks (x, y) by the frame's time (ns).
fn facemark_on(file: &Path) -> Vec<(u64, Vec<(f64, f64)>)> {
    let out = Command::new("gst-launch-1.0")
        .env("GST_PLUGIN_PATH", build_dir())
        .args(["-m", "filesrc", &format!("location={}", file.display()), "!", "qtdemux", "!", "h264parse"])
        .args(["!", "avdec_h264", "!", "videoconvert", "!", "facemark", "emit-messages=true", "!", "fakesink"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let pts = line.split("faces-timestamp=(guint64)").nth(1)?.split(',').next()?.parse().ok()?;
            let values = line.split(r"landmarks\=\(double\)\<\ ").nth(1)?.split(r"\>").next()?;
            let numbers: Vec<f64> =
                values.split(r"\,\ ").filter_map(|v| v.trim_end_matches(['\\', ' ']).parse().ok()).collect();
            Some((pts, numbers.chunks_exact(3).map(|p| (p[0], p[1])).collect()))
        })
        .collect()
}

/// `/events/<stream>` sends one event per analysed frame; the recording's `.landmarks.jsonl`
/// holds the same frames on the file's timeline: each line's pts is a frame of the file, and
/// facemark run again on that frame of the file finds the same landmarks (within 3 px).
#[test]
fn face_events_and_the_landmarks_file_follow_the_analysed_frames() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-events", &["--sessions", "1"]);
    let refused = http(server.port, "GET", "/events/s", &[("Authorization", "Bearer wrong")], b"");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(http(server.port, "GET", "/events/nope", &[], b"").status, 404);
    // A reader from before the session to the server's exit.
    let mut reader = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let request = format!("GET /events/s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    std::io::Write::write_all(&mut reader, request.as_bytes()).unwrap();
    let reading = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut text);
        text
    });
    report(publish_a_face(&server, 6));
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    let events = reading.join().unwrap();
    assert!(events.starts_with("HTTP/1.1 200") && events.contains("content-type: text/event-stream"), "{events:.300}");
    let events: Vec<&str> = events.lines().filter_map(|l| l.strip_prefix("data: ")).collect();

    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let landmarks = std::fs::read_to_string(mp4[0].with_extension("landmarks.jsonl")).unwrap();
    let lines: Vec<&str> = landmarks.lines().collect();
    assert_eq!(events.len(), lines.len(), "one event per line of the file");
    // How many frames facemark takes depends on the machine (a busy worker passes frames on with
    // its last result); each one it analysed is a line, and an event.
    let frames = json_u64(&check(&mp4[0]), "video_frames") as usize;
    assert!(lines.len() >= 30 && lines.len() <= frames, "{} analysed of {frames} frames", lines.len());
    let file_frames: Vec<u64> = video_pts(&mp4[0]).iter().map(|s| (s * 1e9).round() as u64).collect();
    // facemark run again on the file finds landmarks that differ a little where the live one
    // tracked the face from another history (a busy worker skips frames, and a tracked face's
    // crop comes from the frame before): on average within 3 px of the same frame, and closer
    // to it than to the frames on either side (the face moves), which a line a frame off fails.
    let again = facemark_on(&mp4[0]);
    let landmarks_at = |frame: u64| again.iter().find(|(t, _)| t.abs_diff(frame) < 1_000_000).map(|(_, p)| p);
    let (mut compared, mut told_apart, mut off) = (0, 0, Vec::new());
    for (line, event) in lines.iter().zip(&events) {
        assert!(line.contains("\"width\":640,\"height\":360"), "{line:.200}");
        // The event has the same result, on the pipeline's clock.
        assert_eq!(line.split_once(",\"width\"").unwrap().1, event.split_once(",\"width\"").unwrap().1);
        let pts = json_u64(line, "pts");
        // The file stores times in its timescale: the same frame within a millisecond.
        let index = file_frames.iter().position(|&f| f.abs_diff(pts) < 1_000_000);
        let index = index.unwrap_or_else(|| {
            let nearest = file_frames.iter().min_by_key(|f| f.abs_diff(pts));
            let firsts: Vec<u64> = lines.iter().take(5).map(|l| json_u64(l, "pts")).collect();
            panic!(
                "{pts} ns is no frame of the file (nearest {nearest:?}; lines from {firsts:?}, frames from {:?})",
                &file_frames[..5]
            )
        });
        // The first face's landmarks: [[x,y,z],[x,y,z],...]
        let Some(first) = line.split("\"landmarks\":[[").nth(1).and_then(|rest| rest.split("]]").next()) else {
            continue;
        };
        let ours: Vec<(f64, f64)> = first
            .split("],[")
            .map(|p| {
                let v: Vec<f64> = p.split(',').map(|n| n.parse().unwrap()).collect();
                (v[0], v[1])
            })
            .collect();
        let mean_distance = |points: &Vec<(f64, f64)>| {
            assert_eq!(ours.len(), points.len(), "{line:.200}");
            ours.iter().zip(points).map(|(a, b)| (a.0 - b.0).hypot(a.1 - b.1)).sum::<f64>() / ours.len() as f64
        };
        let Some(same) = landmarks_at(file_frames[index]).map(mean_distance) else { continue };
        compared += 1;
        if same > 3.0 {
            // The live tracker, far behind on a starved machine, cropped the face from a frame
            // several back: those landmarks are off (up to 29 px seen beside stress-ng), as the
            // overlay is; counted below, and kept out of the check of the frame they belong to.
            off.push(format!("{pts}: {same:.1} px"));
            continue;
        }
        // Where the face moved between frames (a busy publisher repeats some), the line is
        // closer to its own frame than to the one before or after.
        let own = landmarks_at(file_frames[index]).unwrap();
        let neighbours = [index.checked_sub(1), Some(index + 1)];
        for other in
            neighbours.into_iter().flatten().filter_map(|i| file_frames.get(i)).filter_map(|&f| landmarks_at(f))
        {
            let moved =
                own.iter().zip(other).map(|(a, b)| (a.0 - b.0).hypot(a.1 - b.1)).sum::<f64>() / own.len() as f64;
            if moved >= 3.0 {
                let distance = mean_distance(other);
                assert!(same < distance, "frame {pts}: {same:.1} px from its frame, {distance:.1} from a neighbour");
                told_apart += 1;
            }
        }
    }
    assert!(told_apart >= 10, "only {told_apart} frames had a neighbour where the face had moved");
    assert!(compared * 100 >= lines.len() * 80, "{compared} of {} frames compared", lines.len());
    assert!(off.len() * 10 <= compared, "{} of {compared} frames more than 3 px off: {off:?}", off.len());
    let shown = events.iter().filter(|e| e.contains("\"faces\":[{")).count();
    assert!(shown * 100 >= events.len() * 80, "the face is found: {shown} of {}", events.len());
}

/// `--facemark-property`: a property facemark does not take stops the start with the reason
/// (before anything listens); one it takes reaches each session's facemark (irises=false: the
/// landmarks file has 468 points a face instead of 478).
#[test]
fn facemark_properties_reach_the_sessions_and_a_bad_one_stops_the_start() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let refused = Command::new(workspace_binary("whipcast"))
        .args(["serve", "--no-token", "--port", "0", "--facemark-property", "iris-interval=0"])
        .env("G_DEBUG", "fatal-criticals")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("--facemark-property iris-interval=0: out of range (1..=300)"), "{said}");

    let server = Server::start("app-facemark-properties", &["--sessions", "1", "--facemark-property", "irises=false"]);
    report(publish_a_face(&server, 3));
    let folder = server.folder.clone();
    let output = server.wait_exit(Duration::from_secs(30));
    let mp4 = files_with(&folder, "mp4");
    assert_eq!(mp4.len(), 1, "{output}");
    let landmarks = std::fs::read_to_string(mp4[0].with_extension("landmarks.jsonl")).unwrap();
    let with_face: Vec<&str> = landmarks.lines().filter(|l| l.contains("\"landmarks\":[[")).collect();
    assert!(with_face.len() >= 10, "{} frames with a face", with_face.len());
    for line in with_face {
        let face = line.split("\"landmarks\":[").nth(1).unwrap();
        assert_eq!(face.matches('[').count(), 468, "{line:.200}");
    }
}

/// The marking threads' low priority stays with them: a task thread can go back to GLib's
/// shared thread pool when its session ends, and an unprivileged process cannot raise it again,
/// so a thread reused from there at nice 10 would slow the next session's recording. In a second
/// session every thread but the marking ones runs at the default priority.
#[test]
fn recording_threads_keep_their_priority_session_after_session() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::start("app-priority", &["--sessions", "2"]);
    report(publish_a_face(&server, 3));
    server.wait_for("\nrecorded ", Duration::from_secs(20));
    let second = publish_a_face(&server, 4);
    // The second session's threads, once its recording and marking run (a busy machine is slower).
    let started = std::time::Instant::now();
    let threads = loop {
        let threads = whipcast_tests::cpu::threads(server.child.id());
        let running = |prefix: &str| threads.iter().filter(|t| t.name.starts_with(prefix)).count();
        if (running("in-") >= 2 && running("face-mark") >= 1) || started.elapsed() > Duration::from_secs(10) {
            break threads;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    report(second);
    server.wait_exit(Duration::from_secs(30));
    let nice =
        |prefix: &str| -> Vec<i64> { threads.iter().filter(|t| t.name.starts_with(prefix)).map(|t| t.nice).collect() };
    // Every other thread (ingest, recording, decoding, the server) at whipcast's own priority, its
    // main thread's (the tests may run under `nice`).
    let base = threads.iter().find(|t| t.name == "whipcast").map_or(0, |t| t.nice);
    let others: Vec<_> =
        threads.iter().filter(|t| !t.name.starts_with("face-mark") && t.name != "facemark-infer").collect();
    assert!(nice("in-").len() >= 2 && others.iter().all(|t| t.nice == base), "{others:?}");
    let marking = nice("face-mark");
    assert!(!marking.is_empty() && marking.iter().all(|&n| n > base), "marking threads at {marking:?}");
}
