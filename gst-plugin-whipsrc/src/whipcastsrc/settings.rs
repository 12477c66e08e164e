//! whipcastsrc's properties: their values, defaults and what they mean in one place.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use super::{CodecOrder, OnDisconnect, Output, Simulcast};
use crate::endpoint::EndpointSettings;
use crate::ratelimit;
use crate::sdp::{self, CodecPreferences, OfferLimits};
use crate::session::Policy;
use crate::simulcast::Choice;
use crate::whip::Protocol;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// Address, port, stream, token, TLS, ICE: shared with whipcastwhepsink.
    pub(super) endpoint: EndpointSettings,
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
            endpoint: EndpointSettings::default(),
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
            timeout: crate::session::DEFAULT_TIMEOUT_S,
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
}

impl Settings {
    /// Every property but `stats` (the element's own).
    pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
        let d = Settings::default();
        let mut specs = EndpointSettings::param_specs(Protocol::Whip);
        specs.extend([
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
        ]);
        specs
    }

    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        if self.endpoint.set(name, value) {
            return;
        }
        let s = self;
        let string = || value.get::<Option<String>>().unwrap();
        match name {
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
        if let Some(value) = self.endpoint.get(name) {
            return value;
        }
        let s = self;
        match name {
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
