//! `cargo bench -p gst-plugin-facemark`: per-frame time of detection + landmarks + drawing on one
//! core, with tracking on and off, on the astronaut (512x512) and on a 1280x720 frame with the
//! astronaut's head pasted in. Medians of the thread's CPU time (what a frame costs, however busy
//! the machine is) and of wall time (what it costs on a loaded machine; the two agree on an idle
//! one).
//!
//! Side by side in the same run, on the same core: tract's plan (`runtime=tract`) and, when
//! FACEMARK_MEDIAPIPE_PYTHON names a Python with mediapipe 0.10.14 (`scripts/mediapipe-venv.sh`
//! makes one), MediaPipe's own FaceMesh on the same frames (benches/mediapipe_facemesh.py), with
//! the ratios.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use common::{Rgb, model_dir};
use gstfacemark::core::draw::{draw_face, flags};
use gstfacemark::core::image::{Frame, FrameMut, PixelLayout};
use gstfacemark::core::model::Runtime;
use gstfacemark::{Config, FaceMarker};

const FRAMES: usize = 200;

/// CPU time this thread has used, in ms: unlike wall time, not inflated when other processes
/// take the cores.
fn thread_cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 * 1e-6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median wall ms per frame: the whole job, and without drawing (what MediaPipe's
/// `process()`, which draws nothing, is timed on).
#[derive(Clone, Copy)]
struct Times {
    whole: f64,
    models: f64,
}

/// Runs facemark on `img` and prints its figures.
fn bench(name: &str, img: &Rgb, config: Config) -> Times {
    let Config { tracking, irises, iris_interval, runtime, .. } = config;
    let layout = PixelLayout::Rgbx;
    let stride = img.width * 4;
    let src = img.to_layout(layout, stride);
    let mut buf = src.clone();
    let mut m = FaceMarker::new(&model_dir(), config).unwrap();
    let (mut total, mut infer) = (Vec::with_capacity(FRAMES), Vec::with_capacity(FRAMES));
    let mut cpu = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES + 10 {
        buf.copy_from_slice(&src);
        let c0 = thread_cpu_ms();
        let t0 = Instant::now();
        let n = {
            let faces = m.process(&Frame::new(&buf, img.width, img.height, stride, layout)).unwrap();
            faces.len()
        };
        let t1 = Instant::now();
        let mut canvas = FrameMut::new(&mut buf, img.width, img.height, stride, layout);
        for f in m.faces() {
            draw_face(&mut canvas, f, flags::DEFAULT);
        }
        let t2 = Instant::now();
        let c2 = thread_cpu_ms();
        assert_eq!(n, 1, "{name}: one face");
        if k >= 10 {
            infer.push((t1 - t0).as_secs_f64() * 1e3);
            total.push((t2 - t0).as_secs_f64() * 1e3);
            cpu.push(c2 - c0);
        }
    }
    let s = m.stats();
    let per = |secs: f64, runs: u64| {
        if runs > 0 { secs * 1e3 / runs as f64 } else { 0.0 }
    };
    println!(
        "{name:<24} tracking={:<5} irises={irises:<5} iris-interval={iris_interval} {:<6} median {:6.2} ms/frame CPU, {:6.2} ms wall (models {:6.2} ms, drawing {:5.2} ms); detector ran {}x in {} frames; mean run: detector {:.2} ms, mesh {:.2} ms, iris {:.2} ms",
        tracking,
        if runtime == Runtime::Tract { "tract" } else { "fused" },
        median(cpu),
        median(total.clone()),
        median(infer.clone()),
        median(total.clone()) - median(infer.clone()),
        s.detector_runs,
        s.frames,
        per(s.detector_seconds, s.detector_runs),
        per(s.landmark_seconds, s.landmark_runs),
        per(s.iris_seconds, s.iris_runs),
    );
    Times { whole: median(total), models: median(infer) }
}

/// FACEMARK_PROFILE=1: where each model's time goes, with each runtime.
fn profile() {
    use gstfacemark::core::attention;
    use gstfacemark::core::model::{DETECTOR_FILE, IRIS_FILE, LANDMARK_FILE, Net, Runtime};
    use gstfacemark::core::refine::Heads;
    let dir = model_dir();
    let mut models = vec![
        (DETECTOR_FILE, 3, 128, &[][..], vec![896 * 16, 896]),
        (LANDMARK_FILE, 3, 192, &[][..], vec![1404, 1]),
        (IRIS_FILE, 3, 64, &["output_iris"][..], vec![15]),
        (attention::TRUNK_FILE, 3, 192, &[][..], attention::TRUNK_OUTPUTS.to_vec()),
    ];
    for region in Heads::REGIONS {
        models.push((region.file, attention::MAP_CHANNELS, attention::CROP_SIDE, &[][..], region.outputs()));
    }
    for runtime in [Runtime::Auto, Runtime::Tract] {
        for (file, channels, size, keep, outs) in &models {
            let path = dir.join(file);
            let mut net = if keep.is_empty() {
                Net::load_planes(&path, *channels, *size, outs, runtime)
            } else {
                Net::load_selected(&path, *size, keep, outs, runtime)
            }
            .unwrap();
            let steps = net.profile(100).unwrap();
            let total: f64 = steps.iter().map(|o| o.1).sum();
            println!("{file} ({}): {total:.2} ms per run", net.runtime());
            let mut slowest = steps.clone();
            slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
            for (op, ms) in slowest.iter().take(12) {
                println!("  {op:<40} {ms:6.3} ms");
            }
        }
    }
}

/// Keeps this process (and the MediaPipe process it starts) on the core it is on.
fn pin_to_one_core() -> Option<i32> {
    // SAFETY: plain libc calls on a zeroed cpu_set_t of the right size.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return None;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        (libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0).then_some(cpu)
    }
}

/// MediaPipe on the image at `png`; the median wall ms per frame, or why not.
fn mediapipe(python: &std::ffi::OsStr, png: &Path, tracking: bool, irises: bool) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/mediapipe_facemesh.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(png)
        .arg(FRAMES.to_string())
        .arg(if tracking { "track" } else { "detect" })
        .arg(if irises { "478" } else { "468" })
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{}: {line}", out.status));
    }
    let report: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    // The same job: one face, with the points asked for.
    let points = if irises { 478 } else { 468 };
    if report["faces"] != 1 || report["landmarks"] != points {
        return Err(format!("MediaPipe did not find one face of {points} points: {line}"));
    }
    report["median_ms"].as_f64().ok_or_else(|| format!("no median in {line}"))
}

fn save_png(img: &Rgb, path: &Path) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut enc = png::Encoder::new(file, img.width as u32, img.height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&img.data).unwrap();
}

fn main() {
    match pin_to_one_core() {
        Some(cpu) => println!("pinned to CPU {cpu} (MediaPipe too)"),
        None => println!("could not pin to one CPU"),
    }
    if std::env::var_os("FACEMARK_PROFILE").is_some() {
        profile();
    }
    let astronaut = Rgb::load("astronaut.png");
    let mut hd = Rgb::filled(1280, 720, [100, 110, 120]);
    // The short-range detector wants faces of at least ~20% of the frame's longer side (a
    // webcam at arm's length): the astronaut's head scaled 2.5x, 600x600 around the face.
    let big = astronaut.scaled(2.5);
    let mut head = Rgb::filled(600, 600, [0; 3]);
    head.paste(&big, -250, -30);
    hd.paste(&head, 560, 60);
    let hd_png = std::env::temp_dir().join(format!("facemark-bench-{}.png", std::process::id()));
    save_png(&hd, &hd_png);
    // Relative paths are taken from the workspace (cargo runs benchmarks in the crate's folder).
    let python = std::env::var_os("FACEMARK_MEDIAPIPE_PYTHON")
        .filter(|p| !p.is_empty())
        .map(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p).into_os_string());
    if python.is_none() {
        println!("(FACEMARK_MEDIAPIPE_PYTHON unset: no MediaPipe figures; scripts/mediapipe-venv.sh)");
    }
    let frames = [
        ("astronaut 512x512", &astronaut, common::data("astronaut.png")),
        ("1280x720, head pasted", &hd, hd_png.clone()),
    ];
    for irises in [false, true] {
        for tracking in [false, true] {
            for (name, img, png) in &frames {
                let config = Config { tracking, irises, ..Config::default() };
                let ours = bench(name, img, config);
                if !irises {
                    let tract = bench(name, img, Config { runtime: Runtime::Tract, ..config });
                    println!("{:<24} fused / tract = {:.2}", "", ours.whole / tract.whole);
                }
                // A tracked face's irises, each eye every other frame (whipcast's default).
                let alternate = (irises && tracking).then(|| bench(name, img, Config { iris_interval: 2, ..config }));
                if let Some(python) = &python {
                    match mediapipe(python, png, tracking, irises) {
                        Ok(mp) => {
                            println!(
                                "{:<24} MediaPipe 0.10.14 FaceMesh ({} points): median {mp:6.2} ms/frame wall; fused / MediaPipe = {:.2} (without drawing: {:.2})",
                                "",
                                if irises { 478 } else { 468 },
                                ours.whole / mp,
                                ours.models / mp
                            );
                            if let Some(alternate) = alternate {
                                println!(
                                    "{:<24} fused with iris-interval=2 / MediaPipe = {:.2} (without drawing: {:.2})",
                                    "",
                                    alternate.whole / mp,
                                    alternate.models / mp
                                );
                            }
                        }
                        Err(e) => println!("{:<24} MediaPipe failed: {e}", ""),
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_file(&hd_png);
}
