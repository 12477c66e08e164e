//! The command line: `whipcast serve [OPTIONS]` and `whipcast check FILE...`, with the checks
//! and token choices made before anything starts.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use gstwhipsrc::{endpoint, session};

use crate::facemark_properties;

#[derive(Parser)]
#[command(version, about = "WHIP ingest that records each session and marks faces", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    #[arg(long, default_value = endpoint::DEFAULT_ADDRESS)]
    pub address: String,
    /// TCP port of the WHIP endpoint.
    #[arg(long, default_value_t = endpoint::DEFAULT_PORT as u16)]
    pub port: u16,
    /// Stream names (publish to /whip/<stream>); repeat for several.
    #[arg(long = "stream", default_values_t = [endpoint::DEFAULT_STREAM.to_string()])]
    pub streams: Vec<String>,
    /// Bearer token publishers of every stream must send. Without it each stream gets a token
    /// of its own, generated and printed.
    #[arg(long, env = "WHIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A stream's own Bearer token (repeat for several): a leaked token opens only its stream.
    #[arg(long = "stream-token", value_name = "STREAM=TOKEN", value_parser = stream_token)]
    pub stream_tokens: Vec<(String, String)>,
    /// Bearer token viewers (WHEP: /whep/<stream>, /whep/<stream>/source) must send; without it,
    /// the stream's publisher token.
    #[arg(long, env = "WHEP_TOKEN", hide_env_values = true)]
    pub viewer_token: Option<String>,
    /// Accept publishers without a token (not recommended outside a lab).
    #[arg(long, conflicts_with_all = ["token", "stream_tokens"])]
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
    /// A facemark property for every session (gst-inspect-1.0 facemark), e.g. irises=false or
    /// iris-interval=1 (whipcast's default is 2: each eye's iris every other frame); repeat for
    /// more. Checked at start.
    #[arg(long = "facemark-property", value_name = "NAME=VALUE", value_parser = facemark_properties::parse)]
    pub facemark_properties: Vec<(String, String)>,
    /// Do not serve the browser publish page at /.
    #[arg(long)]
    pub no_publish_page: bool,
    /// Serve /metrics without a token (it wants a publisher's token by default).
    #[arg(long)]
    pub metrics_open: bool,
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
    #[arg(long, default_value_t = session::DEFAULT_TIMEOUT_S)]
    pub timeout: u32,
    /// Exit after this many sessions are recorded (0: serve until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub sessions: u32,
}

fn stream_token(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((stream, token)) if !stream.is_empty() && !token.is_empty() => Ok((stream.into(), token.into())),
        _ => Err("expected STREAM=TOKEN, both non-empty".into()),
    }
}

impl ServeArgs {
    /// Sets what whipcastsrc and whipcastwhepsink both take from the command line: where the
    /// server listens, TLS, and ICE.
    pub fn set_endpoint_properties(&self, element: &gst::Element) {
        use gst::prelude::*;
        element.set_property("address", &self.address);
        element.set_property("port", u32::from(self.port));
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        let optional = [
            ("tls-certificate", path(&self.tls_certificate)),
            ("tls-key", path(&self.tls_key)),
            ("public-address", self.public_address.clone()),
            ("port-range", self.port_range.clone()),
            ("stun-server", self.stun_server.clone()),
        ];
        for (property, value) in optional {
            if let Some(value) = value {
                element.set_property(property, value);
            }
        }
    }

    /// The Bearer token viewers of `stream` must send (`None`: anyone may watch).
    pub fn viewer_token_for(&self, stream: &str) -> Option<&str> {
        self.viewer_token.as_deref().filter(|t| !t.is_empty()).or_else(|| self.token_for(stream))
    }

    /// The Bearer token publishers of `stream` must send (`None`: anyone may publish).
    pub fn token_for(&self, stream: &str) -> Option<&str> {
        let own = self.stream_tokens.iter().find(|(s, _)| s == stream);
        own.map(|(_, token)| token.as_str()).or(self.token.as_deref())
    }

    /// Checks `--stream-token` against the streams served, and gives each stream without a
    /// token its own random one unless `--token` or `--no-token` says otherwise.
    pub fn settle_tokens(&mut self) -> Result<(), String> {
        if self.token.as_deref().is_some_and(str::is_empty) {
            self.token = None;
        }
        for (i, (stream, _)) in self.stream_tokens.iter().enumerate() {
            if !self.streams.contains(stream) {
                return Err(format!("--stream-token names {stream:?}, which is not served (add --stream {stream})"));
            }
            if self.stream_tokens[..i].iter().any(|(earlier, _)| earlier == stream) {
                return Err(format!("--stream-token gives {stream:?} two tokens"));
            }
        }
        if self.token.is_none() && !self.no_token {
            for stream in &self.streams {
                if !self.stream_tokens.iter().any(|(s, _)| s == stream) {
                    self.stream_tokens.push((stream.clone(), gstwhipsrc::whip::random_id()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_name_whipcastsrcs_defaults() {
        // pipelines/lib.sh writes them for file names and messages; the element owns them.
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipelines/lib.sh");
        let out = std::process::Command::new("bash")
            .args(["-c", r#". "$1" && echo "$whip_default_address $whip_default_port $whip_default_stream""#, "-", lib])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let expected =
            format!("{} {} {}\n", endpoint::DEFAULT_ADDRESS, endpoint::DEFAULT_PORT, endpoint::DEFAULT_STREAM);
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
        let cli = Cli::try_parse_from(["whipcast", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else { unreachable!("serve was parsed") };
        assert_eq!((args.address.as_str(), u32::from(args.port)), (endpoint::DEFAULT_ADDRESS, endpoint::DEFAULT_PORT));
        assert_eq!(
            (args.streams, args.timeout),
            (vec![endpoint::DEFAULT_STREAM.to_string()], session::DEFAULT_TIMEOUT_S)
        );
    }

    fn serve_args(args: &[&str]) -> Result<ServeArgs, String> {
        let cli = Cli::try_parse_from(["whipcast", "serve"].iter().chain(args)).map_err(|e| e.to_string())?;
        let Command::Serve(mut args) = cli.command else { unreachable!("serve was parsed") };
        args.settle_tokens()?;
        Ok(*args)
    }

    #[test]
    fn without_a_token_each_stream_gets_its_own() {
        let args = serve_args(&["--stream", "a", "--stream", "b", "--stream-token", "b=bee"]).unwrap();
        let a = args.token_for("a").unwrap();
        assert_eq!(args.token_for("b"), Some("bee"));
        assert!(a.len() >= 16 && a != "bee", "{a}");
        let again = serve_args(&["--stream", "a"]).unwrap();
        assert_ne!(again.token_for("a"), Some(a), "generated anew each time");
    }

    #[test]
    fn one_token_serves_every_stream_but_those_with_their_own() {
        let args =
            serve_args(&["--stream", "a", "--stream", "b", "--stream", "c", "--token", "t", "--stream-token", "c=x"])
                .unwrap();
        assert_eq!(["a", "b", "c"].map(|s| args.token_for(s)), [Some("t"), Some("t"), Some("x")]);
        let open = serve_args(&["--stream", "a", "--no-token"]).unwrap();
        assert_eq!(open.token_for("a"), None);
    }

    #[test]
    fn stream_tokens_that_cannot_be_meant_are_refused() {
        for (args, error) in [
            (&["--stream-token", "studio=x"][..], "not served"),
            (&["--stream-token", "live=x", "--stream-token", "live=y"][..], "two tokens"),
            (&["--stream-token", "live="][..], "STREAM=TOKEN"),
            (&["--stream-token", "live"][..], "STREAM=TOKEN"),
            (&["--stream-token", "live=x", "--no-token"][..], "cannot be used with"),
        ] {
            let got = serve_args(args).err().unwrap_or_default();
            assert!(got.contains(error), "{args:?}: {got}");
        }
    }
}
