//! `whipcast`: the main job. A WHIP endpoint (whipserversrc) that records every session without
//! re-encoding (AV1, VP8, VP9 -> WebM; H.264, H.265 -> MP4; with the Opus audio) and runs
//! facemark on the decoded video for annotated snapshots, session after session, until Ctrl-C.
//! `whipcast check FILE...` decodes recordings and says what they hold.

mod check;
mod progress;
mod recorder;
mod setup;
mod tracks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gst::glib;

#[derive(Parser)]
#[command(version, about = "WHIP ingest that records each session and marks faces", propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WHIP and record each session into the recordings folder (until Ctrl-C).
    Serve(Box<ServeArgs>),
    /// Decode recordings and print one JSON line per file (frames, size, duration, codecs).
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address the HTTP server (and ICE) listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: String,
    /// TCP port of the WHIP endpoint.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Stream names (publish to /whip/<stream>); repeat for several.
    #[arg(long = "stream", default_values_t = ["live".to_string()])]
    pub streams: Vec<String>,
    /// Bearer token publishers must send; generated and printed when not set.
    #[arg(long, env = "WHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept publishers without a token (not recommended outside a lab).
    #[arg(long, conflicts_with = "token")]
    pub no_token: bool,
    /// Where recordings go: <stream>-<UTC time>.webm|.mp4, snapshots in <stream>-<UTC time>/.
    #[arg(long, default_value = "recordings")]
    pub recordings: PathBuf,
    /// An annotated JPEG snapshot every N decoded frames (z100.jpg, z200.jpg, ...).
    #[arg(long, default_value_t = 100)]
    pub snapshot_every: u64,
    /// Snapshots only within the first N frames of a session (0: the whole session).
    #[arg(long, default_value_t = 1000)]
    pub snapshot_frames: u64,
    /// Record only: no decoding, no face landmarks, no snapshots.
    #[arg(long)]
    pub no_facemark: bool,
    /// With simulcast, facemark runs on the smallest layer at least this tall (the recording keeps
    /// the largest); 0: on the recorded layer.
    #[arg(long, default_value_t = 360)]
    pub analysis_height: u32,
    /// facemark's model folder (default: where scripts/fetch-models.sh installs them).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Do not serve the browser publish page at /.
    #[arg(long)]
    pub no_publish_page: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for --tls-certificate.
    #[arg(long, requires = "tls_certificate")]
    pub tls_key: Option<PathBuf>,
    /// Public IP addresses to announce (a server behind NAT), comma-separated.
    #[arg(long)]
    pub public_address: Option<String>,
    /// UDP port range for ICE, MIN-MAX.
    #[arg(long)]
    pub port_range: Option<String>,
    /// STUN server (stun://host:port).
    #[arg(long)]
    pub stun_server: Option<String>,
    /// End a session after this many seconds without media.
    #[arg(long, default_value_t = 10)]
    pub timeout: u32,
    /// Exit after this many sessions are recorded (0: serve until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub sessions: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init() {
        eprintln!("whipcast: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Check { files } => check::run(&files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whipcast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer does not start: {e}"))?;
    gstav1rtp::plugin_register_static().map_err(|e| e.to_string())?;
    gstwhipsrc::plugin_register_static().map_err(|e| e.to_string())?;
    gstfacemark::plugin_register_static().map_err(|e| e.to_string())?;
    Ok(())
}

fn serve(mut args: ServeArgs) -> Result<(), String> {
    if args.token.as_deref().is_some_and(str::is_empty) {
        args.token = None;
    }
    if args.token.is_none() && !args.no_token {
        args.token = Some(gstwhipsrc::whip::random_id());
    }
    std::fs::create_dir_all(&args.recordings)
        .map_err(|e| format!("cannot create the recordings folder {}: {e}", args.recordings.display()))?;
    let main_loop = glib::MainLoop::new(None, false);
    let recorder = recorder::Recorder::start(args.clone(), main_loop.clone())?;
    setup::print_settings(&args);
    main_loop.run();
    recorder.shut_down()
}
