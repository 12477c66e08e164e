//! Missing, damaged and hostile model files: clear errors naming the file and the fix, never a
//! panic, a hang or gigabytes of memory.

use crate::common::model_dir;
use gstfacemark::{Config, FaceMarker};

#[test]
fn missing_and_corrupt_models_are_clear_errors() {
    let missing = std::path::Path::new("/nonexistent/facemark-models");
    let err = FaceMarker::new(missing, Config::default()).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/facemark-models") && err.contains("scripts/fetch-models.sh"), "{err}");
    assert!(err.contains("does not exist"), "{err}");

    let dir = std::env::temp_dir().join(format!("facemark-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("face_detection_short_range.onnx"), "this is a text file, not ONNX\n").unwrap();
    std::fs::copy(model_dir().join("face_landmark.onnx"), dir.join("face_landmark.onnx")).unwrap();
    let err = FaceMarker::new(&dir, Config::default()).unwrap_err().to_string();
    assert!(err.contains("face_detection_short_range.onnx") && err.contains("scripts/fetch-models.sh"), "{err}");
    assert!(err.contains("not a usable ONNX model"), "{err}");

    // The right file under the wrong name is caught by its outputs.
    std::fs::copy(model_dir().join("face_landmark.onnx"), dir.join("face_detection_short_range.onnx")).unwrap();
    let err = FaceMarker::new(&dir, Config::default()).unwrap_err().to_string();
    assert!(err.contains("face_detection_short_range.onnx"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Damaged copies of a real model (cut short, bytes overwritten) give errors that name the file
/// and the fix, never a panic; the undamaged bytes load.
#[test]
fn damaged_model_bytes_are_errors() {
    use gstfacemark::core::model::{DETECTOR_FILE, Net};
    let bytes = std::fs::read(model_dir().join(DETECTOR_FILE)).unwrap();
    let name = std::path::Path::new("damaged.onnx");
    let outputs = [896 * 16, 896];
    let check = |data: &[u8], what: &str| {
        if let Err(e) = Net::from_bytes(name, data, 128, &outputs) {
            let text = e.to_string();
            assert!(text.contains("damaged.onnx") && text.contains("fetch-models.sh"), "{what}: {text}");
            false
        } else {
            true
        }
    };
    for cut in [0, 1, 7, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        assert!(!check(&bytes[..cut], &format!("cut at {cut}")), "cut at {cut} loads");
    }
    // Overwritten bytes may still make a loadable model (weights are bytes too); what matters
    // is that loading returns.
    for (at, value) in [(10, 0xff), (50, 0x00), (200, 0x7f), (4000, 0x12)] {
        let mut damaged = bytes.clone();
        damaged[at] = value;
        check(&damaged, &format!("byte {at} = {value:#x}"));
    }
    assert!(check(&bytes, "undamaged"));
}

/// The elements of the handmade models' output when it has the input's shape.
const HANDMADE_OUTPUT: usize = 3 * 128 * 128;

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line =
        status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Runs `load` (a model load that must fail) on its own thread and returns its error text,
/// asserting that it came within a second and that the process's peak resident memory grew
/// by less than 200 MB meanwhile (other tests run at the same time, so a little growth is
/// theirs). A load still running after 10 s fails the test rather than hanging it.
fn refused_quickly<E: std::fmt::Display>(what: &str, load: impl FnOnce() -> Result<(), E> + Send + 'static) -> String {
    use std::time::{Duration, Instant};
    // Writing 5 to clear_refs resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load().err().map(|e| e.to_string()));
    });
    let result =
        rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what}: still loading after 10 s"));
    let took = started.elapsed();
    let grew_mb = status_kb("VmHWM:").saturating_sub(before) / 1024;
    let err = result.unwrap_or_else(|| panic!("{what}: loads"));
    assert!(took < Duration::from_secs(1), "{what}: took {took:?} ({err})");
    assert!(grew_mb < 200, "{what}: peak memory grew by {grew_mb} MB ({err})");
    assert!(err.contains("fetch-models.sh"), "{what}: {err}");
    err
}

/// Loads handmade model bytes the way the element loads the detector.
fn load_bytes(bytes: Vec<u8>) -> Result<(), gstfacemark::ModelError> {
    use gstfacemark::core::model::Net;
    Net::from_bytes(std::path::Path::new("handmade.onnx"), &bytes, 128, &[HANDMADE_OUTPUT]).map(drop)
}

/// A named pipe, a folder or an oversized file as a model path is refused before anything is
/// read: opening a pipe with no writer would block the loader for ever, and reading a huge file
/// would take its size in memory.
#[test]
fn model_paths_that_are_not_regular_files_are_refused() {
    use gstfacemark::core::model::{DETECTOR_FILE, Net, Runtime};
    let dir = std::env::temp_dir().join(format!("facemark-not-a-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.onnx");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let path = fifo.clone();
    let err =
        refused_quickly("a FIFO", move || Net::load_with(&path, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop));
    assert!(err.contains("pipe.onnx") && err.contains("not a regular file"), "{err}");

    // The same through the element's loader, the FIFO standing for the detector.
    let models = dir.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::rename(&fifo, models.join(DETECTOR_FILE)).unwrap();
    let err = refused_quickly("a FIFO in the model folder", move || {
        gstfacemark::FaceMarker::new(&models, gstfacemark::Config::default()).map(drop)
    });
    assert!(err.contains(DETECTOR_FILE) && err.contains("not a regular file"), "{err}");

    let folder = dir.clone();
    let err =
        refused_quickly("a folder", move || Net::load_with(&folder, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop));
    assert!(err.contains("not a regular file"), "{err}");

    // Sparse: it takes no room on disk.
    let huge = dir.join("huge.onnx");
    std::fs::File::create(&huge).unwrap().set_len(1 << 40).unwrap();
    let err = refused_quickly("a 1 TiB file", move || {
        Net::load_with(&huge, 128, &[HANDMADE_OUTPUT], Runtime::Auto).map(drop)
    });
    assert!(err.contains("huge.onnx") && err.contains("larger than"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Initializers that declare more values than they hold, or more than any face model has, are
/// refused before anything is allocated for them.
#[test]
fn huge_initializers_are_refused() {
    use crate::onnx_bytes::{FLOAT, model, node, tensor};
    // The same graph with a small initializer loads: the models below differ only in `w`.
    let add_w = |w: Vec<u8>| model(&[node("Add", &["x", "w"], "y", &[])], &[w]);
    load_bytes(add_w(tensor("w", FLOAT, &[1], &1f32.to_le_bytes()))).unwrap();
    for (what, dims, raw) in [
        ("2^40 values and no data", &[1i64 << 20, 1 << 20][..], &[][..]),
        ("2^40 values and 4 bytes", &[1 << 20, 1 << 20], &[0u8; 4][..]),
        ("dims whose product overflows", &[1 << 32, 1 << 32, 1 << 32], &[0; 4]),
        ("16 values and 4 bytes", &[16], &[0; 4]),
    ] {
        let err = refused_quickly(what, move || load_bytes(add_w(tensor("w", FLOAT, dims, raw))));
        assert!(err.contains("handmade.onnx") && err.contains("tensor \"w\""), "{what}: {err}");
    }
}

/// ConstantOfShape asking for 2^28 values (1 GiB of floats), 2^40 values or an overflowing
/// shape, directly or from a computed shape: refused before tract allocates the result (it
/// evaluates constant nodes while it loads a model, and only then looks at their size).
#[test]
fn huge_constant_of_shape_is_refused() {
    use crate::onnx_bytes::{FLOAT, int_attribute, int64s, model, node, tensor, tensor_attribute};
    // Ones, so that the values are written (zeroed memory need not be resident).
    let one = || [tensor_attribute("value", tensor("one", FLOAT, &[1], &1f32.to_le_bytes()))];
    for (what, shape) in [
        ("2^28 values", &[1i64 << 14, 1 << 14][..]),
        ("2^40 values", &[1 << 20, 1 << 20]),
        ("an overflowing shape", &[1 << 32, 1 << 32, 1 << 32]),
    ] {
        let bytes = model(&[node("ConstantOfShape", &["s"], "y", &one())], &[int64s("s", shape)]);
        let err = refused_quickly(what, move || load_bytes(bytes));
        assert!(err.contains("ConstantOfShape"), "{what}: {err}");
    }
    let computed = model(
        &[node("Concat", &["a", "b"], "s", &[int_attribute("axis", 0)]), node("ConstantOfShape", &["s"], "y", &one())],
        &[int64s("a", &[1 << 14]), int64s("b", &[1 << 14])],
    );
    let err = refused_quickly("a computed shape", move || load_bytes(computed));
    assert!(err.contains("ConstantOfShape"), "{err}");
}

/// Tensors that would take gigabytes although the file is small: a broadcast of two constants
/// (which tract would compute while loading), a broadcast, a padding and a convolution of the
/// input (computed when the model runs, by tract or the fused engine), and tensors that each fit
/// but add up to too much.
#[test]
fn huge_computed_tensors_are_refused() {
    use crate::onnx_bytes::{FLOAT, int64s, model, node, tensor};
    let ones = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| 1f32.to_le_bytes()).collect() };
    let constants = model(
        &[node("Add", &["a", "b"], "y", &[])],
        &[tensor("a", FLOAT, &[1 << 14, 1], &ones(1 << 14)), tensor("b", FLOAT, &[1, 1 << 14], &ones(1 << 14))],
    );
    let err = refused_quickly("a broadcast of constants to 2^28 values", move || load_bytes(constants));
    assert!(err.contains("constants only"), "{err}");

    // Each is computed from the input `x` [1, 3, 128, 128].
    let cases = [
        (
            "a broadcast of the input to 3 * 2^28 values",
            vec![node("Add", &["x", "c"], "y", &[])],
            vec![tensor("c", FLOAT, &[1 << 14, 1, 1, 1], &ones(1 << 14))],
            "more than the",
        ),
        (
            "a padding of the input to 3 * 2^30 values",
            vec![node("Pad", &["x", "pads"], "y", &[])],
            vec![int64s("pads", &[0, 0, 1 << 14, 1 << 14, 0, 0, 1 << 14, 1 << 14])],
            "more than the",
        ),
        (
            "a 1x1 convolution of the input to 2^14 channels (2^28 values)",
            vec![node("Conv", &["x", "w"], "y", &[])],
            vec![tensor("w", FLOAT, &[1 << 14, 3, 1, 1], &ones(3 << 14))],
            "more than the",
        ),
        (
            "five tensors of 300 * 3 * 128 * 128 values",
            vec![
                node("Add", &["x", "c"], "y1", &[]),
                node("Add", &["y1", "c"], "y2", &[]),
                node("Add", &["y2", "c"], "y3", &[]),
                node("Add", &["y3", "c"], "y4", &[]),
                node("Add", &["y4", "c"], "y", &[]),
            ],
            vec![tensor("c", FLOAT, &[300, 1, 1, 1], &ones(300))],
            "together",
        ),
    ];
    for (what, nodes, initializers, reason) in cases {
        let bytes = model(&nodes, &initializers);
        let err = refused_quickly(what, move || load_bytes(bytes));
        assert!(err.contains(reason), "{what}: {err}");
    }
}

/// Markers of one folder share its compiled models (each with buffers of its own): run at the
/// same time on different pictures, each finds exactly what it finds alone.
#[test]
fn markers_sharing_a_folder_run_apart() {
    use crate::common::Rgb;
    let alone = |name: &str| {
        let mut m = crate::marker(Config { tracking: false, ..Config::default() });
        crate::run(&mut m, &Rgb::load(name))
    };
    let expected = [alone("astronaut.png"), alone("grace_hopper.png")];
    assert!(expected.iter().all(|faces| faces.len() == 1), "{expected:?}");
    let together: Vec<_> = ["astronaut.png", "grace_hopper.png"]
        .into_iter()
        .map(|name| {
            std::thread::spawn(move || {
                let image = Rgb::load(name);
                let mut m = crate::marker(Config { tracking: false, ..Config::default() });
                (0..10).map(|_| crate::run(&mut m, &image)).collect::<Vec<_>>()
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    for (runs, expected) in together.iter().zip(&expected) {
        for faces in runs {
            assert_eq!(faces[0].landmarks, expected[0].landmarks);
        }
    }
}

/// A model file replaced after a load is read again by the next marker: a broken one is an
/// error, the good one back loads again.
#[test]
fn a_model_file_replaced_is_read_again() {
    let dir = std::env::temp_dir().join(format!("facemark-replaced-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let detector = dir.join(gstfacemark::core::model::DETECTOR_FILE);
    FaceMarker::new(&dir, Config::default()).expect("a copy of the models loads");
    let good = std::fs::read(&detector).unwrap();
    std::fs::write(&detector, "this is a text file, not ONNX\n").unwrap();
    let err = FaceMarker::new(&dir, Config::default()).unwrap_err().to_string();
    assert!(err.contains("not a usable ONNX model"), "{err}");
    std::fs::write(&detector, good).unwrap();
    FaceMarker::new(&dir, Config::default()).expect("the good file back loads");
    std::fs::remove_dir_all(&dir).unwrap();
}
