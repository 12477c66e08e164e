//! `whipcast serve` as the tests run it (a process of its own, its output kept), and the OBS-like
//! publisher sending to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::{exit_within, send_signal};
use crate::{free_port, obs_like_command, output_path, workspace_binary};

/// The publishers' token of the servers started here (`WHIP_TOKEN`).
pub const TOKEN: &str = "app-test-token";

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub folder: PathBuf,
    /// What it printed so far.
    pub output: Arc<Mutex<String>>,
}

/// A test that fails leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `whipcast serve` on 127.0.0.1 with stream `s`, recording into a fresh folder.
    pub fn start(name: &str, extra: &[&str]) -> Server {
        Server::start_with_env(name, extra, &[])
    }

    /// [`Server::start`] with `env` added to whipcast's environment.
    pub fn start_with_env(name: &str, extra: &[&str], env: &[(String, String)]) -> Server {
        let folder = output_path(name);
        let _ = std::fs::remove_dir_all(&folder);
        let args = [&["--stream", "s"], extra].concat();
        Server::spawn_with(&workspace_binary("whipcast"), folder, &args, Some(TOKEN), env)
    }

    /// The same, recording into `folder`.
    pub fn start_in(folder: PathBuf, extra: &[&str]) -> Server {
        Server::spawn(folder, &[&["--stream", "s"], extra].concat(), Some(TOKEN))
    }

    /// `whipcast serve` on 127.0.0.1 with `args`, `WHIP_TOKEN` set to `token`.
    pub fn spawn(folder: PathBuf, args: &[&str], token: Option<&str>) -> Server {
        Server::spawn_with(&workspace_binary("whipcast"), folder, args, token, &[])
    }

    /// [`Server::spawn`] of the whipcast binary `whipcast`, with `env` added to its environment.
    pub fn spawn_with(
        whipcast: &Path,
        folder: PathBuf,
        args: &[&str],
        token: Option<&str>,
        env: &[(String, String)],
    ) -> Server {
        let port = free_port();
        let mut command = Command::new(whipcast);
        command.envs(env.iter().map(|(k, v)| (k, v)));
        command.args(["serve", "--address", "127.0.0.1", "--port", &port.to_string()]);
        command.arg("--recordings").arg(&folder).args(args).env_remove("WHIP_TOKEN");
        if let Some(token) = token {
            command.env("WHIP_TOKEN", token);
        }
        let mut child = command
            // A GStreamer-CRITICAL aborts whipcast, and so fails the test.
            .env("G_DEBUG", "fatal-criticals")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("whipcast starts");
        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[whipcast] {line}");
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let server = Server { child, port, folder, output };
        server.wait_for("whipcast is serving", Duration::from_secs(20));
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/whip/s", self.port)
    }

    pub fn wait_for(&self, text: &str, within: Duration) {
        let start = Instant::now();
        while !self.output.lock().unwrap().contains(text) {
            assert!(start.elapsed() < within, "whipcast never said {text:?}:\n{}", self.output.lock().unwrap());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `text` as long as `publisher` runs (its own timeout bounds the wait): a browser
    /// can take 20 s to start on a busy machine, which a fixed wait would have to guess.
    pub fn wait_for_while(&self, text: &str, publisher: &mut Child) {
        while !self.output.lock().unwrap().contains(text) {
            if let Some(status) = publisher.try_wait().unwrap() {
                panic!(
                    "the publisher ended ({status}) before whipcast said {text:?}:\n{}",
                    self.output.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the server to exit by itself (`--sessions`, or after a signal) and checks it
    /// exited cleanly.
    pub fn wait_exit(mut self, within: Duration) -> String {
        let Some(status) = exit_within(&mut self.child, within) else {
            panic!("whipcast did not exit within {within:?}:\n{}", self.output.lock().unwrap());
        };
        // What it printed last is still on its way through the reader thread.
        std::thread::sleep(Duration::from_millis(200));
        let output = self.output.lock().unwrap().clone();
        assert!(status.success(), "whipcast failed ({status}):\n{output}");
        output
    }

    pub fn interrupt(&self) {
        self.signal(libc::SIGINT);
    }

    pub fn signal(&self, signal: i32) {
        send_signal(&self.child, signal);
    }

    /// SIGKILL, as the OOM killer or a crash would: nothing is finalized. Returns the folder.
    pub fn kill(mut self) -> PathBuf {
        self.child.kill().unwrap();
        let _ = self.child.wait();
        self.folder.clone()
    }
}

/// The OBS-like publisher (libdatachannel, OBS's offer shape) sending `codec` with Opus.
pub fn obs_like(url: &str, codec: &str, seconds: u32) -> Child {
    obs_like_with(url, codec, seconds, &[])
}

pub fn obs_like_with(url: &str, codec: &str, seconds: u32, extra: &[&str]) -> Child {
    obs_like_command()
        .args(["--url", url, "--token", TOKEN, "--codec", codec, "--audio", "--start-at-keyframe"])
        .args(["--seconds", &seconds.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("publisher starts")
}
