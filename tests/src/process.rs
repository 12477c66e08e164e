//! Processes: the workspace's binaries, the publishers in tests/peers and their one-line JSON
//! reports, and a busy machine.

use std::path::{Path, PathBuf};

/// The folder of the peers in tests/peers (installed by `make test` through their setup.sh).
pub fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// gst-plugins-rs's publisher (`tests/src/bin/whip-publish.rs`) for the WHIP endpoint `url`,
/// arguments to add.
pub fn whip_publish_command(url: &str) -> std::process::Command {
    let mut command = std::process::Command::new(workspace_binary("whip-publish"));
    command.arg(url);
    command
}

/// The OBS-like publisher (libdatachannel, `tests/peers/obs_like/publish.py`), arguments to add.
pub fn obs_like_command() -> std::process::Command {
    let python = peers().join("obs_like/.venv/bin/python");
    assert!(python.exists(), "run tests/peers/obs_like/setup.sh (make test does)");
    let mut command = std::process::Command::new(python);
    command.arg(peers().join("obs_like/publish.py"));
    command
}

/// Starts a publisher process (`tests/src/bin/whip-publish.rs`, a peer in `tests/peers`, ...)
/// with its one-line JSON report on a pipe.
pub fn spawn(command: &mut std::process::Command) -> std::process::Child {
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().expect("publisher starts")
}

/// The number after `"key":` in a one-line JSON report.
pub fn json_u64(text: &str, key: &str) -> u64 {
    let after = text.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("{key} missing in {text}"));
    after.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

/// The numbers in a one-line JSON report's `"key":[...]` (or `"key": [...]`).
pub fn json_u64_list(text: &str, key: &str) -> Vec<u64> {
    let rest = text.split(&format!("\"{key}\":")).nth(1).unwrap_or_else(|| panic!("no {key} in {text}"));
    let list = rest.trim_start().strip_prefix('[').and_then(|r| r.split(']').next()).unwrap_or_default();
    list.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

/// Waits for a publisher started with [`spawn`] and returns its one-line JSON report, which must say `ok`.
pub fn report(child: std::process::Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = text.contains("\"ok\":true") || text.contains("\"ok\": true");
    assert!(out.status.success() && ok, "publisher failed: {text}");
    text
}

/// `target/debug`, where `cargo build --workspace` (which `make test` runs before the tests) puts
/// the workspace's binaries and the plugins' .so files.
pub fn build_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("debug")
}

/// A binary of this workspace built by `cargo build --workspace` (e.g. `whipcast`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = build_dir().join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first", path.display());
    path
}

/// A busy machine: one spinning thread per core (what `stress-ng --cpu N` does), until dropped.
pub struct CpuHog {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuHog {
    pub fn start() -> CpuHog {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                })
            })
            .collect();
        CpuHog { stop, threads }
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Sends `signal` (libc::SIGINT, SIGSTOP, ...) to `child`, one of the test's own processes.
pub fn send_signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill(2) takes plain integers: our own child's pid and a signal number.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill({}, {signal}): {}", child.id(), std::io::Error::last_os_error());
}

/// How `child` exited, once it has, or `None` (and it is killed) when it is still running after
/// `within`.
pub fn exit_within(child: &mut std::process::Child, within: std::time::Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
