//! Any bytes as a face model file: loading gives a model or an error that names the file and the
//! fix, never a panic of ours (libFuzzer's panic hook aborts even inside the loader's
//! catch_unwind, so a panic in our engine's compiler, our checks or a test run is found).
//!
//! Panics raised inside tract (its ONNX parser and optimiser assert on some malformed graphs:
//! a node reading an undefined tensor, a Pad cropping to a negative size) are let through to
//! the loader's catch_unwind, which turns them into an error like any other: they are
//! tract's, and the element already survives them. Found so far: both of those (the second
//! is now refused before tract sees it).
//!
//! Seeding with real models lets the mutations reach past the protobuf framing:
//! `mkdir -p corpus/facemark_model && cp ~/.local/share/whipcast/models/face_detection_short_range.onnx corpus/facemark_model/`
//! then run with `-max_len=500000`.
#![no_main]

use std::path::Path;

use gstfacemark::core::model::Net;
use libfuzzer_sys::fuzz_target;

static TRACT_PANICS_ARE_CAUGHT: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    TRACT_PANICS_ARE_CAUGHT.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("/tract-")) {
                abort(info);
            }
        }));
    });
    if let Err(e) = Net::from_bytes(Path::new("fuzz.onnx"), data, 128, &[896 * 16, 896]) {
        let text = e.to_string();
        assert!(text.contains("fuzz.onnx") && text.contains("fetch-models.sh"), "{text}");
    }
});
