//! Any bytes as a face model file: loading gives a model or an error that names the file and the
//! fix, never a panic (libFuzzer's panic hook aborts even inside the loader's catch_unwind, so
//! a panic anywhere in parsing, optimising or the test run is found).
//!
//! Seeding with real models lets the mutations reach past the protobuf framing:
//! `mkdir -p corpus/facemark_model && cp ~/.local/share/whipcast/models/face_detection_short_range.onnx corpus/facemark_model/`
//! then run with `-max_len=500000`.
#![no_main]

use std::path::Path;

use gstfacemark::core::model::Net;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Net::from_bytes(Path::new("fuzz.onnx"), data, 128, &[896 * 16, 896]) {
        let text = e.to_string();
        assert!(text.contains("fuzz.onnx") && text.contains("fetch-models.sh"), "{text}");
    }
});
