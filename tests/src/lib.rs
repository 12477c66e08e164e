//! Shared support for the integration tests in `tests/tests/`, one module a job: rtp (captures
//! and a real payloader), media (running pipelines, judging recordings), http (a plain client),
//! process (binaries, publishers, load), whipcast (the server), relay (a lossy link), capacity
//! and cpu (the capacity benchmark). Each is re-exported here, so a test takes what it needs
//! from the crate root.

pub mod capacity;
pub mod cpu;
pub mod http;
pub mod media;
pub mod process;
pub mod relay;
pub mod rtp;
pub mod whipcast;

use std::path::{Path, PathBuf};
use std::sync::Once;

pub use http::*;
pub use media::*;
pub use process::*;
pub use rtp::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initializes");
        gstav1rtp::plugin_register_static().expect("av1rtp registers");
        gstwhipsrc::plugin_register_static().expect("whipsrc registers");
        gstrsrtp::plugin_register_static().expect("gst-plugins-rs rtp registers");
    });
}

/// A file under `tests/data`.
pub fn data_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// A fresh path in the system temp dir for a test's output.
pub fn output_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("whipcast-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A small deterministic PRNG for loss patterns (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}
