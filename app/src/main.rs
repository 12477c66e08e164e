//! `whipcast`: the main job. A WHIP endpoint (whipcastsrc) that records every session without
//! re-encoding (AV1, VP8, VP9 -> WebM; H.264, H.265 -> MP4; with the Opus audio) and runs
//! facemark on the decoded video for annotated snapshots, session after session, until Ctrl-C.
//! `whipcast check FILE...` decodes recordings and says what they hold.

mod analysis;
mod args;
mod check;
mod decoders;
mod facemark_properties;
mod faces;
mod metrics;
mod naming;
mod progress;
mod recorder;
mod served;
mod setup;
mod tracks;
mod viewing;

use std::process::ExitCode;

use args::{Cli, Command, ServeArgs};
use clap::Parser;
use gst::glib;

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
    gstrsrtp::plugin_register_static().map_err(|e| e.to_string())?;
    Ok(())
}

fn serve(mut args: ServeArgs) -> Result<(), String> {
    args.settle_tokens()?;
    std::fs::create_dir_all(&args.recordings)
        .map_err(|e| format!("cannot create the recordings folder {}: {e}", args.recordings.display()))?;
    let main_loop = glib::MainLoop::new(None, false);
    let recorder = recorder::Recorder::start(args.clone(), main_loop.clone())?;
    setup::print_settings(&args);
    main_loop.run();
    recorder.shut_down()
}
