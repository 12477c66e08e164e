//! whipcastwhepsink's properties: their values, defaults and what they mean in one place.

use gst::glib;
use gst::prelude::*;

use crate::endpoint::EndpointSettings;
use crate::whip::Protocol;

/// Viewers at once; past them a POST gets 503.
pub(super) const DEFAULT_MAX_VIEWERS: u32 = 20;
/// Frames a viewer's send chain may have waiting before it skips to the next key frame.
pub(super) const DEFAULT_MAX_BACKLOG: u32 = 60;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// Address, port, stream, token, TLS, ICE: shared with whipcastsrc.
    pub(super) endpoint: EndpointSettings,
    pub(super) max_viewers: u32,
    pub(super) max_backlog: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: EndpointSettings::default(),
            max_viewers: DEFAULT_MAX_VIEWERS,
            max_backlog: DEFAULT_MAX_BACKLOG,
        }
    }
}

impl Settings {
    /// Every property but `stats` (the element's own).
    pub(super) fn param_specs() -> Vec<glib::ParamSpec> {
        let mut specs = EndpointSettings::param_specs(Protocol::Whep);
        specs.extend([
            glib::ParamSpecUInt::builder("max-viewers")
                .nick("Max viewers")
                .blurb("Viewers at once (each has a webrtcbin of its own); past them a POST gets 503. 0: no limit")
                .default_value(DEFAULT_MAX_VIEWERS)
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("max-backlog")
                .nick("Max backlog")
                .blurb("Frames a viewer may have waiting to be sent; a viewer that falls further behind skips to the next key frame (asked for upstream), so that nobody else waits for it")
                .minimum(1)
                .default_value(DEFAULT_MAX_BACKLOG)
                .mutable_playing()
                .build(),
        ]);
        specs
    }

    pub(super) fn set(&mut self, name: &str, value: &glib::Value) {
        if self.endpoint.set(name, value) {
            return;
        }
        match name {
            "max-viewers" => self.max_viewers = value.get().unwrap_or(DEFAULT_MAX_VIEWERS),
            "max-backlog" => self.max_backlog = value.get().unwrap_or(DEFAULT_MAX_BACKLOG),
            _ => {}
        }
    }

    pub(super) fn get(&self, name: &str) -> glib::Value {
        if let Some(value) = self.endpoint.get(name) {
            return value;
        }
        match name {
            "max-viewers" => self.max_viewers.to_value(),
            "max-backlog" => self.max_backlog.to_value(),
            _ => None::<String>.to_value(),
        }
    }
}
