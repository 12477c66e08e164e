//! whipserversrc's properties: their values, defaults and what they mean in one place.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::{CodecOrder, OnDisconnect, Output, Simulcast};
use crate::ratelimit;
use crate::sdp::{self, CodecPreferences, OfferLimits};
use crate::server::TlsFiles;
use crate::session::Policy;
use crate::simulcast::Choice;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) address: String,
    pub(super) port: u32,
    pub(super) stream: String,
    pub(super) token: Option<String>,
    pub(super) tls_certificate: Option<String>,
    pub(super) tls_key: Option<String>,
    pub(super) stun_server: Option<String>,
    pub(super) turn_server: Option<String>,
    pub(super) public_address: Option<String>,
    pub(super) port_range: Option<String>,
    pub(super) latency: u32,
    pub(super) video_codecs: String,
    pub(super) audio_codecs: String,
    pub(super) output: Output,
    pub(super) simulcast: Simulcast,
    pub(super) analysis_min_height: u32,
    pub(super) codec_order: CodecOrder,
    pub(super) on_disconnect: OnDisconnect,
    pub(super) replace_publisher: bool,
    pub(super) publish_page: bool,
    pub(super) max_sessions: u32,
    pub(super) timeout: u32,
    pub(super) silent_stream_timeout: u32,
    pub(super) max_media_sections: u32,
    pub(super) max_posts_per_address: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            address: "0.0.0.0".into(),
            port: 8080,
            stream: "live".into(),
            token: None,
            tls_certificate: None,
            tls_key: None,
            stun_server: None,
            turn_server: None,
            public_address: None,
            port_range: None,
            latency: 200,
            video_codecs: "AV1,H264,H265,VP9,VP8".into(),
            audio_codecs: "OPUS".into(),
            output: Output::Rtp,
            simulcast: Simulcast::Best,
            analysis_min_height: 0,
            codec_order: CodecOrder::Offer,
            on_disconnect: OnDisconnect::Eos,
            replace_publisher: true,
            publish_page: false,
            max_sessions: 0,
            timeout: 10,
            silent_stream_timeout: 1000,
            max_media_sections: sdp::DEFAULT_MAX_MEDIA_SECTIONS as u32,
            max_posts_per_address: ratelimit::DEFAULT_POSTS_PER_ADDRESS,
        }
    }
}

pub(super) fn codec_list(list: &str) -> Vec<String> {
    list.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect()
}

impl Settings {
    pub(super) fn preferences(&self) -> CodecPreferences {
        let order = match self.codec_order {
            CodecOrder::Offer => sdp::CodecOrder::Offer,
            CodecOrder::Server => sdp::CodecOrder::Server,
        };
        CodecPreferences { video: codec_list(&self.video_codecs), audio: codec_list(&self.audio_codecs), order }
    }

    pub(super) fn offer_limits(&self) -> OfferLimits {
        OfferLimits { media_sections: self.max_media_sections as usize, ..OfferLimits::default() }
    }

    pub(super) fn policy(&self) -> Policy {
        Policy {
            replace_publisher: self.replace_publisher,
            timeout: (self.timeout > 0).then(|| Duration::from_secs(u64::from(self.timeout))),
            end_stream_with_session: self.on_disconnect == OnDisconnect::Eos,
        }
    }

    /// How long a negotiated stream may stay silent while others flow: only where the session's
    /// end is the stream's (a later publisher could not feed a pad that has ended).
    pub(super) fn silent_stream_timeout(&self) -> Option<Duration> {
        (self.on_disconnect == OnDisconnect::Eos && self.silent_stream_timeout > 0)
            .then(|| Duration::from_millis(u64::from(self.silent_stream_timeout)))
    }

    pub(super) fn layer_choice(&self) -> Choice {
        match self.simulcast {
            Simulcast::Best => Choice::Best,
            Simulcast::Lowest => Choice::Lowest,
            Simulcast::All => Choice::All,
        }
    }

    pub(super) fn socket_address(&self) -> Result<SocketAddr, String> {
        let ip: IpAddr =
            self.address.parse().map_err(|_| format!("address {:?} is not an IP address", self.address))?;
        let port = u16::try_from(self.port).map_err(|_| format!("port {} out of range", self.port))?;
        Ok(SocketAddr::new(ip, port))
    }

    pub(super) fn public_addresses(&self) -> Result<Vec<IpAddr>, String> {
        self.public_address
            .iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| a.parse().map_err(|_| format!("public-address {a:?} is not an IP address")))
            .collect()
    }

    pub(super) fn port_range(&self) -> Result<Option<(u32, u32)>, String> {
        let Some(range) = self.port_range.as_deref().filter(|r| !r.is_empty()) else { return Ok(None) };
        let parse = || {
            let (min, max) = range.split_once('-')?;
            let (min, max): (u16, u16) = (min.trim().parse().ok()?, max.trim().parse().ok()?);
            (min > 0 && min <= max).then_some((u32::from(min), u32::from(max)))
        };
        parse().map(Some).ok_or_else(|| format!("port-range {range:?} is not MIN-MAX"))
    }

    pub(super) fn tls(&self) -> Result<Option<TlsFiles>, String> {
        match (&self.tls_certificate, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => {
                Ok(Some(TlsFiles { certificate: c.into(), key: k.into() }))
            }
            _ => Err("HTTPS needs both tls-certificate and tls-key".into()),
        }
    }

    /// `Link` header values announcing our ICE servers (RFC 9725 4.6).
    pub(super) fn ice_server_links(&self) -> Vec<String> {
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
}

impl Settings {
    /// Every property but `stats` (the element's own).
    pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
        let d = Settings::default();
        vec![
                glib::ParamSpecString::builder("address").nick("Address").blurb("IP address the HTTP server listens on (ICE uses it too when it is not 0.0.0.0)").default_value(Some(d.address.as_str())).mutable_ready().build(),
                glib::ParamSpecUInt::builder("port").nick("Port").blurb("TCP port of the HTTP server; elements naming the same address and port share one server").maximum(65535).default_value(d.port).mutable_ready().build(),
                glib::ParamSpecString::builder("stream").nick("Stream").blurb("Stream name: publishers POST to /whip/<stream>").default_value(Some(d.stream.as_str())).mutable_ready().build(),
                glib::ParamSpecString::builder("token").nick("Token").blurb("Bearer token publishers must send (POST, PATCH, DELETE); empty: anyone may publish").mutable_ready().build(),
                glib::ParamSpecString::builder("tls-certificate").nick("TLS certificate").blurb("PEM certificate chain file: serve HTTPS (with tls-key)").mutable_ready().build(),
                glib::ParamSpecString::builder("tls-key").nick("TLS key").blurb("PEM private key file for tls-certificate").mutable_ready().build(),
                glib::ParamSpecString::builder("stun-server").nick("STUN server").blurb("stun://host:port, used for gathering and announced in a Link header").mutable_ready().build(),
                glib::ParamSpecString::builder("turn-server").nick("TURN server").blurb("turn(s)://user:password@host:port, used for gathering and announced in a Link header").mutable_ready().build(),
                glib::ParamSpecString::builder("public-address").nick("Public address").blurb("Comma-separated IP addresses announced as extra host candidates (a server behind NAT with forwarded UDP ports)").mutable_ready().build(),
                glib::ParamSpecString::builder("port-range").nick("Port range").blurb("UDP ports for ICE as MIN-MAX (e.g. 40000-40100); empty: any").mutable_ready().build(),
                glib::ParamSpecUInt::builder("latency").nick("Latency").blurb("Jitter buffer latency in ms").default_value(d.latency).mutable_ready().build(),
                glib::ParamSpecString::builder("video-codecs").nick("Video codecs").blurb("Video codecs accepted, most preferred first (see codec-order)").default_value(Some(d.video_codecs.as_str())).mutable_ready().build(),
                glib::ParamSpecString::builder("audio-codecs").nick("Audio codecs").blurb("Audio codecs accepted, most preferred first").default_value(Some(d.audio_codecs.as_str())).mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("output", d.output).nick("Output").blurb("What the pads carry").mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("simulcast", d.simulcast).nick("Simulcast").blurb("A publisher sending simulcast layers (OBS 32.1+, browsers): which layer(s) leave on the pads; with all, video_<n> carries the n-th layer of the offer's a=simulcast list (the session-started message's layers names each pad's rid)").mutable_ready().build(),
                glib::ParamSpecUInt::builder("analysis-min-height")
                .nick("Analysis min height")
                .blurb("With simulcast=best or lowest, also put the smallest layer at least this many pixels tall (the tallest when none is) on pad analysis_<n>, listed in session-started's streams: analysis on fewer pixels while video_<n> records the best; 0: no analysis pad")
                .default_value(d.analysis_min_height)
                .mutable_ready()
                .build(),
            glib::ParamSpecEnum::builder_with_default("codec-order", d.codec_order).nick("Codec order").blurb("Whose order picks the codec of a media section among those video-codecs/audio-codecs take: the publisher's offer (it knows its encoders) or ours").mutable_ready().build(),
                glib::ParamSpecEnum::builder_with_default("on-disconnect", d.on_disconnect).nick("On disconnect").blurb("When the publisher leaves: push EOS, or wait for the next publisher").mutable_ready().build(),
                glib::ParamSpecBoolean::builder("publish-page").nick("Publish page").blurb("Serve a browser publish page at / (camera, codec, stream and token; it POSTs to /whip/<stream>)").default_value(d.publish_page).mutable_ready().build(),
                glib::ParamSpecBoolean::builder("replace-publisher").nick("Replace publisher").blurb("A new POST to a busy stream replaces the running session (as OBS reconnects); false: 409").default_value(d.replace_publisher).mutable_ready().build(),
                glib::ParamSpecUInt::builder("max-sessions").nick("Max sessions").blurb("Most sessions at once on this address and port (the smallest of the sharing elements' values); over it: 503. 0: no limit").default_value(d.max_sessions).mutable_ready().build(),
                glib::ParamSpecUInt::builder("timeout").nick("Timeout").blurb("End a session whose publisher sent no RTP for this many seconds after its answer (0: never; a session never answered ends after 10 s)").default_value(d.timeout).mutable_ready().build(),
                glib::ParamSpecUInt::builder("max-media-sections").nick("Max media sections").blurb("Most media sections an offer may have (OBS sends 2, browsers 2 or 3); more: 422. Every section must be in one BUNDLE group").minimum(1).maximum(64).default_value(d.max_media_sections).mutable_ready().build(),
                glib::ParamSpecUInt::builder("max-posts-per-address").nick("Max POSTs per address").blurb("POSTs one client address (an IPv6 /64) may send at once, then 2 per second; more: 429 with Retry-After (also without a valid token: guessing one is as slow). 0: no limit").default_value(d.max_posts_per_address).mutable_ready().build(),
                glib::ParamSpecUInt::builder("silent-stream-timeout").nick("Silent stream timeout").blurb("With on-disconnect=eos: a stream the publisher negotiated and has sent nothing of this many ms after the session's first media ends (EOS on its pad, with caps from the SDP) so that muxers waiting for every stream go on; its later data is dropped. Only for pads whose caps the SDP says (Opus with output=encoded). 0: wait for it").default_value(d.silent_stream_timeout).mutable_ready().build(),
        ]
    }

    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        let s = self;
        let string = || value.get::<Option<String>>().unwrap();
        match name {
            "address" => s.address = string().unwrap_or_else(|| Settings::default().address),
            "port" => s.port = value.get().unwrap(),
            "stream" => s.stream = string().unwrap_or_else(|| Settings::default().stream),
            "token" => s.token = string(),
            "tls-certificate" => s.tls_certificate = string(),
            "tls-key" => s.tls_key = string(),
            "stun-server" => s.stun_server = string(),
            "turn-server" => s.turn_server = string(),
            "public-address" => s.public_address = string(),
            "port-range" => s.port_range = string(),
            "latency" => s.latency = value.get().unwrap(),
            "video-codecs" => s.video_codecs = string().unwrap_or_default(),
            "audio-codecs" => s.audio_codecs = string().unwrap_or_default(),
            "output" => s.output = value.get().unwrap(),
            "simulcast" => s.simulcast = value.get().unwrap(),
            "analysis-min-height" => s.analysis_min_height = value.get().unwrap(),
            "codec-order" => s.codec_order = value.get().unwrap(),
            "on-disconnect" => s.on_disconnect = value.get().unwrap(),
            "replace-publisher" => s.replace_publisher = value.get().unwrap(),
            "publish-page" => s.publish_page = value.get().unwrap(),
            "max-sessions" => s.max_sessions = value.get().unwrap(),
            "timeout" => s.timeout = value.get().unwrap(),
            "silent-stream-timeout" => s.silent_stream_timeout = value.get().unwrap(),
            "max-media-sections" => s.max_media_sections = value.get().unwrap(),
            "max-posts-per-address" => s.max_posts_per_address = value.get().unwrap(),
            _ => unreachable!(),
        }
    }

    pub(super) fn get(&self, name: &str) -> glib::Value {
        let s = self;
        match name {
            "address" => s.address.to_value(),
            "port" => s.port.to_value(),
            "stream" => s.stream.to_value(),
            "token" => s.token.to_value(),
            "tls-certificate" => s.tls_certificate.to_value(),
            "tls-key" => s.tls_key.to_value(),
            "stun-server" => s.stun_server.to_value(),
            "turn-server" => s.turn_server.to_value(),
            "public-address" => s.public_address.to_value(),
            "port-range" => s.port_range.to_value(),
            "latency" => s.latency.to_value(),
            "video-codecs" => s.video_codecs.to_value(),
            "audio-codecs" => s.audio_codecs.to_value(),
            "output" => s.output.to_value(),
            "simulcast" => s.simulcast.to_value(),
            "analysis-min-height" => s.analysis_min_height.to_value(),
            "codec-order" => s.codec_order.to_value(),
            "on-disconnect" => s.on_disconnect.to_value(),
            "replace-publisher" => s.replace_publisher.to_value(),
            "publish-page" => s.publish_page.to_value(),
            "max-sessions" => s.max_sessions.to_value(),
            "timeout" => s.timeout.to_value(),
            "silent-stream-timeout" => s.silent_stream_timeout.to_value(),
            "max-media-sections" => s.max_media_sections.to_value(),
            "max-posts-per-address" => s.max_posts_per_address.to_value(),
            _ => unreachable!(),
        }
    }
}
