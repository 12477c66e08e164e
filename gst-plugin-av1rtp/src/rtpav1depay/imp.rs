use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::av1::layers::{LayerLimit, keep_layers};
use crate::rtp::av1::{Depacketizer, Event, PacketIssue};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("rtpav1depay-rs", gst::DebugColorFlags::empty(), Some("AV1 RTP depayloader"))
});

/// Keyframe requests go upstream at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

const DEFAULT_WAIT_FOR_KEYFRAME: bool = true;
const DEFAULT_REQUEST_KEYFRAME: bool = true;
/// -1: every layer.
const DEFAULT_MAX_LAYER: i32 = -1;

#[derive(Clone, Copy)]
struct Settings {
    wait_for_keyframe: bool,
    request_keyframe: bool,
    max_spatial_layer: i32,
    max_temporal_layer: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            wait_for_keyframe: DEFAULT_WAIT_FOR_KEYFRAME,
            request_keyframe: DEFAULT_REQUEST_KEYFRAME,
            max_spatial_layer: DEFAULT_MAX_LAYER,
            max_temporal_layer: DEFAULT_MAX_LAYER,
        }
    }
}

impl Settings {
    fn layer_limit(&self) -> LayerLimit {
        LayerLimit {
            spatial: u8::try_from(self.max_spatial_layer).ok(),
            temporal: u8::try_from(self.max_temporal_layer).ok(),
        }
    }
}

type Packet = gst::MappedBuffer<gst::buffer::Readable>;

struct State {
    /// The PTS of each TU's first packet travels with it.
    depacketizer: Depacketizer<Packet, Option<gst::ClockTime>>,
    clock_rate: u32,
    /// Timestamps for input without PTS (e.g. `filesrc ! rtpstreamdepay`): RTP time from the
    /// first packet, unwrapped.
    rtp_time: Option<(u32, u64)>,
    last_keyframe_request: Option<Instant>,
    keyframe_requests: u64,
    /// Set when upstream's segment is not in time and we stamp from RTP time instead.
    own_segment: bool,
}

impl State {
    fn new(settings: &Settings) -> Self {
        Self {
            depacketizer: Depacketizer::new(settings.wait_for_keyframe),
            clock_rate: 90_000,
            rtp_time: None,
            last_keyframe_request: None,
            keyframe_requests: 0,
            own_segment: false,
        }
    }

    /// PTS from the RTP timestamp, relative to the first packet.
    fn rtp_pts(&mut self, rtp_timestamp: u32) -> gst::ClockTime {
        let (last, extended) = self.rtp_time.get_or_insert((rtp_timestamp, 0));
        let delta = rtp_timestamp.wrapping_sub(*last) as i32;
        *extended = extended.saturating_add_signed(i64::from(delta));
        *last = rtp_timestamp;
        gst::ClockTime::from_nseconds((*extended as u128 * 1_000_000_000 / u128::from(self.clock_rate)) as u64)
    }
}

pub struct RtpAv1Depay {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

impl RtpAv1Depay {
    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let pts = buffer.pts();
        let packet = buffer.into_mapped_buffer_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Failed to map buffer"]);
            gst::FlowError::Error
        })?;
        let (request_keyframe, limit) = {
            let settings = self.settings.lock().unwrap();
            (settings.request_keyframe, settings.layer_limit())
        };

        let mut outputs = Vec::new();
        let mut want_keyframe = false;
        let mut state = self.state.lock().unwrap();
        let result = state.depacketizer.push(packet, pts, |event| match event {
            Event::TemporalUnit(tu) => outputs.push(tu),
            Event::KeyframeWanted => want_keyframe = true,
        });
        match result {
            Ok(()) | Err(PacketIssue::Stale) => {}
            Err(issue) => gst::warning!(CAT, imp = self, "Dropping data: {issue:?}"),
        }
        let send_request = want_keyframe && request_keyframe && self.take_request_slot(&mut state);
        let buffers: Vec<_> = outputs.into_iter().filter_map(|tu| self.to_buffer(&mut state, tu, limit)).collect();
        drop(state);

        if send_request {
            gst::debug!(CAT, imp = self, "Requesting a key frame upstream");
            let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
            self.sinkpad.push_event(event);
        }
        for buffer in buffers {
            self.srcpad.push(buffer)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn take_request_slot(&self, state: &mut State) -> bool {
        let now = Instant::now();
        if state.last_keyframe_request.is_some_and(|t| now - t < KEYFRAME_REQUEST_INTERVAL) {
            return false;
        }
        state.last_keyframe_request = Some(now);
        state.keyframe_requests += 1;
        true
    }

    /// The buffer of a temporal unit, with only the layers within `limit` (`None`: none of its
    /// frames is).
    fn to_buffer(
        &self,
        state: &mut State,
        tu: crate::rtp::av1::TemporalUnit<Option<gst::ClockTime>>,
        limit: LayerLimit,
    ) -> Option<gst::Buffer> {
        let pts = match tu.meta {
            Some(pts) if !state.own_segment => pts,
            _ => state.rtp_pts(tu.rtp_timestamp),
        };
        let data = if limit.keeps_all() { tu.data } else { keep_layers(&tu.data, limit)? };
        let mut buffer = gst::Buffer::from_mut_slice(data);
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(pts);
            buffer.set_dts(pts);
            let mut flags = gst::BufferFlags::empty();
            if !tu.keyframe {
                flags |= gst::BufferFlags::DELTA_UNIT;
            }
            if tu.discont {
                flags |= gst::BufferFlags::DISCONT;
            }
            buffer.set_flags(flags);
        }
        Some(buffer)
    }

    fn drain(&self) {
        let mut outputs = Vec::new();
        let limit = self.settings.lock().unwrap().layer_limit();
        let mut state = self.state.lock().unwrap();
        state.depacketizer.finish(|event| {
            if let Event::TemporalUnit(tu) = event {
                outputs.push(tu);
            }
        });
        let buffers: Vec<_> = outputs.into_iter().filter_map(|tu| self.to_buffer(&mut state, tu, limit)).collect();
        drop(state);
        for buffer in buffers {
            if self.srcpad.push(buffer).is_err() {
                break;
            }
        }
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(caps) => {
                let clock_rate =
                    caps.caps().structure(0).and_then(|s| s.get::<i32>("clock-rate").ok()).filter(|rate| *rate > 0);
                let Some(clock_rate) = clock_rate else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ["Caps without a positive clock-rate: {}", caps.caps()]
                    );
                    return false;
                };
                self.state.lock().unwrap().clock_rate = clock_rate as u32;
                let caps = self.srcpad.pad_template_caps();
                return self.srcpad.push_event(gst::event::Caps::new(&caps));
            }
            EventView::Segment(segment) => {
                if segment.segment().format() != gst::Format::Time {
                    // RTP read from a file or a socket without timestamps: stamp from RTP time.
                    self.state.lock().unwrap().own_segment = true;
                    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
                    return self.srcpad.push_event(gst::event::Segment::new(&segment));
                }
                self.state.lock().unwrap().own_segment = false;
            }
            EventView::FlushStop(_) => {
                let mut state = self.state.lock().unwrap();
                state.depacketizer.reset();
                state.rtp_time = None;
            }
            EventView::Eos(_) => self.drain(),
            _ => {}
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let stats = state.depacketizer.stats();
        gst::Structure::builder("application/x-rtpav1depay-stats")
            .field("packets-received", stats.packets)
            .field("bytes-received", stats.bytes)
            .field("temporal-units-pushed", stats.temporal_units)
            .field("packets-lost", stats.packets_lost)
            .field("duplicate-packets", stats.duplicates)
            .field("malformed-packets", stats.malformed_packets)
            .field("temporal-units-dropped", stats.dropped_temporal_units)
            .field("keyframe-requests", state.keyframe_requests)
            .build()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for RtpAv1Depay {
    const NAME: &'static str = "WhipcastRtpAv1Depay";
    type Type = super::RtpAv1Depay;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|pad, parent, buffer| {
                RtpAv1Depay::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| {
                        let _ = pad;
                        this.sink_chain(buffer)
                    },
                )
            })
            .event_function(|pad, parent, event| {
                RtpAv1Depay::catch_panic_pad_function(parent, || false, |this| this.sink_event(pad, event))
            })
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap()).build();
        let settings = Settings::default();
        Self { sinkpad, srcpad, state: Mutex::new(State::new(&settings)), settings: Mutex::new(settings) }
    }
}

impl ObjectImpl for RtpAv1Depay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("wait-for-keyframe")
                    .nick("Wait for keyframe")
                    .blurb("After a loss (and at the start) push nothing until the next key frame, so that no undecodable temporal unit goes downstream")
                    .default_value(DEFAULT_WAIT_FOR_KEYFRAME)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("request-keyframe")
                    .nick("Request keyframe")
                    .blurb("Send a GstForceKeyUnit event upstream (at most once a second) when a key frame is needed after a loss")
                    .default_value(DEFAULT_REQUEST_KEYFRAME)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("max-spatial-layer")
                    .nick("Max spatial layer")
                    .blurb("Keep only the OBUs of spatial layers up to this id (an SVC stream's smaller sizes, e.g. 0 for L3T3's smallest); -1: every layer")
                    .minimum(-1)
                    .maximum(3)
                    .default_value(DEFAULT_MAX_LAYER)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecInt::builder("max-temporal-layer")
                    .nick("Max temporal layer")
                    .blurb("Keep only the OBUs of temporal layers up to this id (e.g. 0 for L1T3's base frame rate); temporal units left without a frame are dropped; -1: every layer")
                    .minimum(-1)
                    .maximum(7)
                    .default_value(DEFAULT_MAX_LAYER)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("packets-received, bytes-received, temporal-units-pushed, packets-lost, duplicate-packets, malformed-packets, temporal-units-dropped, keyframe-requests")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "wait-for-keyframe" => {
                settings.wait_for_keyframe = value.get().unwrap();
                self.state.lock().unwrap().depacketizer.set_wait_for_keyframe(settings.wait_for_keyframe);
            }
            "request-keyframe" => settings.request_keyframe = value.get().unwrap(),
            "max-spatial-layer" => settings.max_spatial_layer = value.get().unwrap(),
            "max-temporal-layer" => settings.max_temporal_layer = value.get().unwrap(),
            _ => unreachable!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "wait-for-keyframe" => self.settings.lock().unwrap().wait_for_keyframe.to_value(),
            "request-keyframe" => self.settings.lock().unwrap().request_keyframe.to_value(),
            "max-spatial-layer" => self.settings.lock().unwrap().max_spatial_layer.to_value(),
            "max-temporal-layer" => self.settings.lock().unwrap().max_temporal_layer.to_value(),
            "stats" => self.stats().to_value(),
            _ => unreachable!(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }
}

impl GstObjectImpl for RtpAv1Depay {}

impl ElementImpl for RtpAv1Depay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "AV1 RTP depayloader",
                "Codec/Depayloader/Network/RTP",
                "Depayloads AV1 from RTP (AOM RTP Payload Format for AV1) into one temporal unit per buffer, dropping what a loss made undecodable",
                "whipcast developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink_caps = gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("clock-rate", 90_000i32)
                .field("encoding-name", "AV1")
                .build();
            let src_caps =
                gst::Caps::builder("video/x-av1").field("stream-format", "obu-stream").field("alignment", "tu").build();
            vec![
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &sink_caps).unwrap(),
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &src_caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            let settings = *self.settings.lock().unwrap();
            *self.state.lock().unwrap() = State::new(&settings);
        }
        self.parent_change_state(transition)
    }
}
