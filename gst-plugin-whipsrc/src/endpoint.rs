//! What whipcastsrc and whipcastwhepsink share as HTTP endpoints with WebRTC sessions behind
//! them: where they listen, the stream they serve, the token, TLS, the ICE servers and
//! addresses announced, and how each session's webrtcbin uses them.

use std::net::{IpAddr, SocketAddr};

use gst::glib;
use gst::prelude::*;

use crate::sdp::{self, Sdp};
use crate::server::TlsFiles;
use crate::whip::{self, Protocol, StreamAuth};

/// The `address` property's default: every IPv4 interface.
pub const DEFAULT_ADDRESS: &str = "0.0.0.0";
/// The `port` property's default (TCP).
pub const DEFAULT_PORT: u32 = 8080;
/// The `stream` property's default: publishers POST to `/whip/live`, viewers to `/whep/live`.
pub const DEFAULT_STREAM: &str = "live";

/// The endpoint properties: values as set.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// `address`: the IP address the HTTP server listens on, and ICE uses when not unspecified.
    pub address: String,
    /// `port`: the server's TCP port (0..=65535); elements on the same address and port share it.
    pub port: u32,
    /// `stream`: the stream name, one or two `/`-separated parts ([`whip::is_stream_name`]).
    pub stream: String,
    /// `token`: the bearer token clients must send; `None` or empty: none needed.
    pub token: Option<String>,
    /// `tls-certificate`: a PEM certificate chain file; with `tls_key`, the server speaks HTTPS.
    pub tls_certificate: Option<String>,
    /// `tls-key`: the PEM private key file for `tls_certificate`.
    pub tls_key: Option<String>,
    /// `stun-server`: `stun://host:port`, used for gathering and announced in a Link header.
    pub stun_server: Option<String>,
    /// `turn-server`: `turn(s)://user:password@host:port`, used and announced likewise.
    pub turn_server: Option<String>,
    /// `public-address`: comma-separated IP addresses announced as extra host candidates.
    pub public_address: Option<String>,
    /// `port-range`: the UDP ports ICE may use, as `MIN-MAX`; `None` or empty: any.
    pub port_range: Option<String>,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        Self {
            address: DEFAULT_ADDRESS.into(),
            port: DEFAULT_PORT,
            stream: DEFAULT_STREAM.into(),
            token: None,
            tls_certificate: None,
            tls_key: None,
            stun_server: None,
            turn_server: None,
            public_address: None,
            port_range: None,
        }
    }
}

/// The property names [`EndpointSettings`] answers to.
const NAMES: [&str; 10] = [
    "address",
    "port",
    "stream",
    "token",
    "tls-certificate",
    "tls-key",
    "stun-server",
    "turn-server",
    "public-address",
    "port-range",
];

impl EndpointSettings {
    /// The properties, worded for `protocol`'s clients (publishers or viewers).
    pub fn param_specs(protocol: Protocol) -> Vec<glib::ParamSpec> {
        let (who, verb) = match protocol {
            Protocol::Whip => ("publishers", "publish"),
            Protocol::Whep => ("viewers", "watch"),
        };
        let path = protocol.name();
        vec![
            glib::ParamSpecString::builder("address")
                .nick("Address")
                .blurb("IP address the HTTP server listens on (ICE uses it too when it is not 0.0.0.0)")
                .default_value(Some(DEFAULT_ADDRESS))
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("port")
                .nick("Port")
                .blurb("TCP port of the HTTP server; whipcastsrc and whipcastwhepsink elements naming the same address and port share one server")
                .maximum(65535)
                .default_value(DEFAULT_PORT)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("stream")
                .nick("Stream")
                .blurb(&format!("Stream name: {who} POST to /{path}/<stream> (one or two /-separated parts)"))
                .default_value(Some(DEFAULT_STREAM))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("token")
                .nick("Token")
                .blurb(&format!("Bearer token {who} must send (POST, PATCH, DELETE); empty: anyone may {verb}"))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("tls-certificate")
                .nick("TLS certificate")
                .blurb("PEM certificate chain file: serve HTTPS (with tls-key)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("tls-key")
                .nick("TLS key")
                .blurb("PEM private key file for tls-certificate")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("stun-server")
                .nick("STUN server")
                .blurb("stun://host:port, used for gathering and announced in a Link header")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("turn-server")
                .nick("TURN server")
                .blurb("turn(s)://user:password@host:port, used for gathering and announced in a Link header")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("public-address")
                .nick("Public address")
                .blurb("Comma-separated IP addresses announced as extra host candidates (a server behind NAT with forwarded UDP ports)")
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("port-range")
                .nick("Port range")
                .blurb("UDP ports for ICE as MIN-MAX (e.g. 40000-40100); empty: any")
                .mutable_ready()
                .build(),
        ]
    }

    /// Sets property `name` if it is one of ours: false if not.
    pub fn set(&mut self, name: &str, value: &glib::Value) -> bool {
        let string = || value.get::<Option<String>>().ok().flatten();
        let defaults = EndpointSettings::default();
        match name {
            "address" => self.address = string().unwrap_or(defaults.address),
            "port" => self.port = value.get().unwrap_or(defaults.port),
            "stream" => self.stream = string().unwrap_or(defaults.stream),
            "token" => self.token = string(),
            "tls-certificate" => self.tls_certificate = string(),
            "tls-key" => self.tls_key = string(),
            "stun-server" => self.stun_server = string(),
            "turn-server" => self.turn_server = string(),
            "public-address" => self.public_address = string(),
            "port-range" => self.port_range = string(),
            _ => return false,
        }
        true
    }

    /// Property `name`'s value if it is one of ours.
    pub fn get(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "address" => self.address.to_value(),
            "port" => self.port.to_value(),
            "stream" => self.stream.to_value(),
            "token" => self.token.to_value(),
            "tls-certificate" => self.tls_certificate.to_value(),
            "tls-key" => self.tls_key.to_value(),
            "stun-server" => self.stun_server.to_value(),
            "turn-server" => self.turn_server.to_value(),
            "public-address" => self.public_address.to_value(),
            "port-range" => self.port_range.to_value(),
            _ => return None,
        })
    }

    /// Whether `name` is one of ours.
    pub fn has(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// Every value checked, as a start would: the first problem, in words.
    pub fn check(&self) -> Result<(), String> {
        self.socket_address()?;
        self.tls()?;
        self.public_addresses()?;
        self.port_range()?;
        // They go out in `Link` headers: a control character there could not be sent.
        for (name, value) in [("stun-server", &self.stun_server), ("turn-server", &self.turn_server)] {
            if let Some(bad) = value.as_deref().and_then(|v| v.chars().find(|c| c.is_control() || *c == '"')) {
                return Err(format!("{name} holds {bad:?}, which an HTTP Link header cannot carry"));
            }
        }
        if !whip::is_stream_name(&self.stream) {
            return Err(format!(
                "stream {:?} must be one or two /-separated parts of letters, digits, '-', '_' or '.'",
                self.stream
            ));
        }
        Ok(())
    }

    /// The token clients must send, if any.
    pub fn required_token(&self) -> Option<String> {
        self.token.clone().filter(|t| !t.is_empty())
    }

    /// What the server asks of a client of this endpoint: the token, or nothing.
    pub fn auth(&self) -> StreamAuth {
        match self.required_token() {
            Some(token) => StreamAuth::Token(token),
            None => StreamAuth::Open,
        }
    }

    /// The address and port to listen on, or why they do not make one.
    pub fn socket_address(&self) -> Result<SocketAddr, String> {
        let ip: IpAddr =
            self.address.parse().map_err(|_| format!("address {:?} is not an IP address", self.address))?;
        let port = u16::try_from(self.port).map_err(|_| format!("port {} out of range", self.port))?;
        Ok(SocketAddr::new(ip, port))
    }

    /// The `public-address` list parsed (empty when unset), or the first entry that is no IP address.
    pub fn public_addresses(&self) -> Result<Vec<IpAddr>, String> {
        self.public_address
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().map_err(|_| format!("public-address {a:?} is not an IP address")))
            .collect()
    }

    /// The `port-range` as (min, max), 1 <= min <= max <= 65535; `None` when unset or empty.
    pub fn port_range(&self) -> Result<Option<(u32, u32)>, String> {
        let Some(range) = self.port_range.as_deref().filter(|r| !r.is_empty()) else { return Ok(None) };
        let parse = || {
            let (min, max) = range.split_once('-')?;
            let (min, max): (u16, u16) = (min.trim().parse().ok()?, max.trim().parse().ok()?);
            (min > 0 && min <= max).then_some((u32::from(min), u32::from(max)))
        };
        parse().map(Some).ok_or_else(|| format!("port-range {range:?} is not MIN-MAX"))
    }

    /// The TLS files when both are set (HTTPS), `None` when neither is (HTTP); an error if only one is.
    pub fn tls(&self) -> Result<Option<TlsFiles>, String> {
        match (&self.tls_certificate, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => {
                Ok(Some(TlsFiles { certificate: c.into(), key: k.into() }))
            }
            _ => Err("HTTPS needs both tls-certificate and tls-key".into()),
        }
    }

    /// Whether every candidate is a host candidate (no STUN or TURN): all are known at once.
    pub fn host_candidates_only(&self) -> bool {
        self.stun_server.as_deref().unwrap_or("").is_empty() && self.turn_server.as_deref().unwrap_or("").is_empty()
    }

    /// `Link` header values announcing our ICE servers (RFC 9725 4.6).
    pub fn ice_server_links(&self) -> Vec<String> {
        let mut links = Vec::new();
        if let Some(stun) = self.stun_server.as_deref().filter(|s| !s.is_empty()) {
            let host = stun.trim_start_matches("stun://");
            links.push(format!("<stun:{host}>; rel=\"ice-server\""));
        }
        if let Some(turn) = self.turn_server.as_deref().filter(|s| !s.is_empty()) {
            let (scheme, rest) = turn.split_once("://").unwrap_or(("turn", turn));
            let (credentials, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            let (user, pass) = credentials.split_once(':').unwrap_or((credentials, ""));
            links.push(format!(
                "<{scheme}:{host}?transport=udp>; rel=\"ice-server\"; username=\"{user}\"; credential=\"{pass}\"; credential-type=\"password\""
            ));
        }
        links
    }

    /// Sets up a session's webrtcbin for these settings: its ICE servers, ports and local
    /// address, and no UPnP.
    pub fn configure_ice(&self, webrtcbin: &gst::Element) -> Result<(), String> {
        if let Some(stun) = self.stun_server.as_deref().filter(|s| !s.is_empty()) {
            webrtcbin.set_property("stun-server", stun);
        }
        if let Some(turn) = self.turn_server.as_deref().filter(|s| !s.is_empty()) {
            webrtcbin.set_property("turn-server", turn);
        }
        let ice = webrtcbin.property::<gst_webrtc::WebRTCICE>("ice-agent");
        // No UPnP port mapping attempts (libnice's default): slow, noisy, and not ours to do.
        if ice.find_property("agent").is_some() {
            let agent = ice.property::<glib::Object>("agent");
            if agent.find_property("upnp").is_some() {
                agent.set_property("upnp", false);
            }
        }
        if let Some((min, max)) = self.port_range()? {
            ice.set_property("min-rtp-port", min);
            ice.set_property("max-rtp-port", max);
        }
        if let Ok(ip) = self.address.parse::<IpAddr>()
            && !ip.is_unspecified()
        {
            // ICE on the address HTTP listens on (libnice skips loopback unless told).
            let _ = ice.emit_by_name::<bool>("add-local-ip-address", &[&ip.to_string()]);
        }
        Ok(())
    }
}

/// The elements a session's webrtcbin is made of, whose plugins [`prepare_webrtc`] loads.
const WEBRTC_FACTORIES: [&str; 5] = ["webrtcbin", "nicesrc", "dtlsdec", "srtpdec", "rtpbin"];

/// Loads the plugins of a session's webrtcbin and has the process's DTLS certificate made,
/// before the first publisher or viewer comes; returns how long that took, or `None` when it was
/// done before. The first session otherwise does both while its peer waits for the answer: the
/// certificate's key alone took 3.4 s on 2 busy cores (`stress-ng --cpu 8`), and OBS gives up
/// on an answer after 8 s.
pub fn prepare_webrtc() -> Option<std::time::Duration> {
    static PREPARED: std::sync::Once = std::sync::Once::new();
    let mut took = None;
    PREPARED.call_once(|| {
        let started = std::time::Instant::now();
        for name in WEBRTC_FACTORIES {
            if let Some(factory) = gst::ElementFactory::find(name) {
                let _ = factory.load();
            }
        }
        // GStreamer's DTLS elements make one certificate per process, with the first of them
        // that has none given.
        drop(gst::ElementFactory::make("dtlsdec").build());
        took = Some(started.elapsed());
    });
    took
}

/// webrtcbin's answer with us as the DTLS server where the offer lets us choose (sdp::as_dtls_server).
pub fn as_dtls_server(
    answer: &gst_webrtc::WebRTCSessionDescription,
    offer: &Sdp,
) -> Result<gst_webrtc::WebRTCSessionDescription, String> {
    let text = answer.sdp().as_text().map_err(|e| e.to_string())?;
    let text = sdp::as_dtls_server(&text, offer).map_err(|e| e.to_string())?;
    let message = gst_sdp::SDPMessage::parse_buffer(text.as_bytes())
        .map_err(|_| "unparsable after setting a=setup".to_string())?;
    Ok(gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message))
}

/// Emits `signal` (set-remote-description, set-local-description) and waits for its promise.
pub fn wait_promise(
    webrtcbin: &gst::Element,
    signal: &str,
    description: &gst_webrtc::WebRTCSessionDescription,
) -> Result<(), String> {
    let promise = gst::Promise::new();
    webrtcbin.emit_by_name::<()>(signal, &[description, &promise]);
    match promise.wait() {
        gst::PromiseResult::Replied => promise_reply(Ok(promise.get_reply())).map(|_| ()),
        other => Err(format!("{other:?}")),
    }
}

/// A webrtcbin promise's reply, or the error it carries (an `error` field, or no reply) as text.
pub fn promise_reply(
    reply: Result<Option<&gst::StructureRef>, gst::PromiseError>,
) -> Result<Option<&gst::StructureRef>, String> {
    match reply {
        Ok(Some(s)) if s.has_field("error") => {
            Err(s.get::<glib::Error>("error").map(|e| e.to_string()).unwrap_or_else(|_| s.to_string()))
        }
        Ok(s) => Ok(s),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// The answer to a request for an element that is going away.
pub fn gone() -> whip::Rejection {
    whip::Rejection::new(503, "the stream is shutting down").with_header("retry-after", "5")
}

/// Calls `watch` on the element once a second, off the server's async threads, until the element
/// is gone or the task is aborted (sessions and viewers ending by time).
pub fn spawn_watch<E: glib::object::ObjectType + Send + Sync>(
    element: glib::WeakRef<E>,
    watch: fn(&E),
) -> tokio::task::JoinHandle<()> {
    crate::server::RUNTIME.spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            ticks.tick().await;
            let element = element.clone();
            let alive = tokio::task::spawn_blocking(move || element.upgrade().map(|e| watch(&e)).is_some())
                .await
                .unwrap_or(false);
            if !alive {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_say_what_is_wrong() {
        let mut s = EndpointSettings::default();
        assert_eq!(s.check(), Ok(()));
        s.stream = "cam/source".into();
        assert_eq!(s.check(), Ok(()));
        s.stream = "a/b/c".into();
        assert!(s.check().unwrap_err().contains("stream"));
        s.stream = "live".into();
        s.port_range = Some("9-1".into());
        assert!(s.check().unwrap_err().contains("port-range"));
        s.port_range = None;
        s.tls_key = Some("k.pem".into());
        assert!(s.check().unwrap_err().contains("tls-certificate"));
        s.tls_key = None;
        s.address = "example.com".into();
        assert!(s.check().unwrap_err().contains("not an IP address"));
        s.address = "127.0.0.1".into();
        s.turn_server = Some("turn://u:p\r\nx@turn.example:3478".into());
        assert_eq!(s.check().unwrap_err(), "turn-server holds '\\r', which an HTTP Link header cannot carry");
        s.turn_server = None;
        s.stun_server = Some("stun://a\"b".into());
        assert!(s.check().unwrap_err().starts_with("stun-server holds '\"'"));
        s.stun_server = Some("stun://stun.example:3478".into());
        assert_eq!(s.check(), Ok(()));
    }

    #[test]
    fn ice_server_links_carry_turn_credentials() {
        let s = EndpointSettings {
            stun_server: Some("stun://stun.example:3478".into()),
            turn_server: Some("turn://u:p@turn.example:3478".into()),
            ..Default::default()
        };
        assert_eq!(
            s.ice_server_links(),
            [
                "<stun:stun.example:3478>; rel=\"ice-server\"",
                "<turn:turn.example:3478?transport=udp>; rel=\"ice-server\"; username=\"u\"; credential=\"p\"; credential-type=\"password\""
            ]
        );
        assert!(!s.host_candidates_only());
        assert!(EndpointSettings::default().host_candidates_only());
    }

    #[test]
    fn names_match_the_properties() {
        let specs = EndpointSettings::param_specs(Protocol::Whep);
        assert_eq!(specs.iter().map(|p| p.name().to_string()).collect::<Vec<_>>(), NAMES);
        assert!(specs[2].blurb().unwrap().contains("/whep/<stream>"));
        let mut s = EndpointSettings::default();
        for name in NAMES {
            let value = s.get(name).unwrap();
            assert!(s.set(name, &value), "{name}");
        }
        assert!(!s.set("latency", &1u32.to_value()));
    }
}
