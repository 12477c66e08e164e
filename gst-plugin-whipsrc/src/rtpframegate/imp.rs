use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::framegate::{Codec, FrameGate, GateStats, Packet};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("rtpframegate", gst::DebugColorFlags::empty(), Some("Whole, decodable RTP video frames"))
});

const DEFAULT_REQUEST_INTERVAL_MS: u32 = 1000;

struct State {
    /// `None` until the caps name a codec the gate reads (others pass as they come).
    gate: Option<FrameGate<gst::Buffer>>,
    /// Counters of gates replaced by new caps.
    earlier: GateStats,
    started: Instant,
}

impl Default for State {
    fn default() -> Self {
        State { gate: None, earlier: GateStats::default(), started: Instant::now() }
    }
}

pub struct RtpFrameGate {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    request_interval: Mutex<Duration>,
    state: Mutex<State>,
}

impl RtpFrameGate {
    fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (release, request) = {
            let mut state = self.state.lock().unwrap();
            let now = state.started.elapsed();
            let Some(gate) = state.gate.as_mut() else {
                drop(state);
                return self.srcpad.push(buffer);
            };
            let outcome = match gst_rtp::RTPBuffer::from_buffer_readable(&buffer) {
                Ok(rtp) => {
                    let packet = Packet {
                        seq: rtp.seq(),
                        timestamp: rtp.timestamp(),
                        marker: rtp.is_marker(),
                        payload: rtp.payload().unwrap_or(&[]),
                    };
                    let item = buffer.clone();
                    gate.push(packet, item, now)
                }
                Err(_) => {
                    gst::warning!(CAT, imp = self, "Dropping a buffer that is not RTP");
                    return Ok(gst::FlowSuccess::Ok);
                }
            };
            if !outcome.dropped.is_empty() {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Dropped {} packets (damaged, or before a key frame)",
                    outcome.dropped.len()
                );
            }
            (outcome.release, outcome.request_key_frame)
        };
        if request {
            gst::debug!(CAT, imp = self, "Asking for a key frame");
            // Not all-headers: webrtcbin would send FIR, which fewer publishers answer than PLI.
            let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(false).build();
            let _ = self.sinkpad.push_event(event);
        }
        match release.len() {
            0 => Ok(gst::FlowSuccess::Ok),
            1 => self.srcpad.push(release.into_iter().next().unwrap()),
            n => {
                let mut list = gst::BufferList::new_sized(n);
                {
                    let list = list.get_mut().unwrap();
                    for buffer in release {
                        list.add(buffer);
                    }
                }
                self.srcpad.push_list(list)
            }
        }
    }

    fn chain_list(&self, list: gst::BufferList) -> Result<gst::FlowSuccess, gst::FlowError> {
        for buffer in list.iter_owned() {
            self.chain(buffer)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Caps(caps) => {
                let codec = caps
                    .caps()
                    .structure(0)
                    .and_then(|s| s.get::<&str>("encoding-name").ok())
                    .and_then(Codec::from_encoding_name);
                let interval = *self.request_interval.lock().unwrap();
                let mut state = self.state.lock().unwrap();
                let keep = matches!((&state.gate, codec), (Some(_), Some(_)));
                if !keep {
                    if let Some(old) = state.gate.take() {
                        add_stats(&mut state.earlier, old.stats());
                    }
                    state.gate = codec.map(|c| FrameGate::new(c, interval));
                    gst::debug!(CAT, imp = self, "Gating {codec:?}");
                }
            }
            // A new stream (a new publisher behind the same pad): from a key frame again.
            gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => self.restart(),
            _ => {}
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    /// The same codec from a key frame again; the counters go on.
    fn restart(&self) {
        let interval = *self.request_interval.lock().unwrap();
        let mut state = self.state.lock().unwrap();
        if let Some(old) = state.gate.take() {
            add_stats(&mut state.earlier, old.stats());
            state.gate = Some(FrameGate::new(old.codec(), interval));
        }
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let mut total = state.earlier;
        if let Some(gate) = &state.gate {
            add_stats(&mut total, gate.stats());
        }
        gst::Structure::builder("application/x-rtpframegate-stats")
            .field("frames-passed", total.frames_passed)
            .field("frames-dropped", total.frames_dropped)
            .field("losses", total.losses)
            .field("key-frame-requests", total.key_frame_requests)
            .build()
    }
}

fn add_stats(total: &mut GateStats, more: GateStats) {
    total.frames_passed += more.frames_passed;
    total.frames_dropped += more.frames_dropped;
    total.losses += more.losses;
    total.key_frame_requests += more.key_frame_requests;
}

#[glib::object_subclass]
impl ObjectSubclass for RtpFrameGate {
    const NAME: &'static str = "GstRtpFrameGate";
    type Type = super::RtpFrameGate;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|_, parent, buffer| {
                RtpFrameGate::catch_panic_pad_function(parent, || Err(gst::FlowError::Error), |imp| imp.chain(buffer))
            })
            .chain_list_function(|_, parent, list| {
                RtpFrameGate::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain_list(list),
                )
            })
            .event_function(|pad, parent, event| {
                RtpFrameGate::catch_panic_pad_function(parent, || false, |imp| imp.sink_event(pad, event))
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        RtpFrameGate {
            sinkpad,
            srcpad,
            request_interval: Mutex::new(Duration::from_millis(DEFAULT_REQUEST_INTERVAL_MS.into())),
            state: Mutex::default(),
        }
    }
}

impl ObjectImpl for RtpFrameGate {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("request-interval")
                    .nick("Request interval")
                    .blurb("Least time in ms between two key-frame requests (upstream force-key-unit events; webrtcbin sends them as PLI)")
                    .minimum(10)
                    .maximum(60_000)
                    .default_value(DEFAULT_REQUEST_INTERVAL_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("frames-passed, frames-dropped (damaged, or waiting for a key frame), losses (gaps in sequence numbers), key-frame-requests")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "request-interval" => {
                *self.request_interval.lock().unwrap() =
                    Duration::from_millis(value.get::<u32>().expect("type checked").into())
            }
            // GLib passes only the properties registered above.
            other => gst::warning!(CAT, imp = self, "No property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "request-interval" => (self.request_interval.lock().unwrap().as_millis() as u32).to_value(),
            "stats" => self.stats().to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for RtpFrameGate {}

impl ElementImpl for RtpFrameGate {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "RTP frame gate",
                "Filter/Network/RTP",
                "Passes whole H.264/H.265/VP8/VP9 frames of a stream intact since its last key frame: after a loss it drops up to the next key frame and asks for one (place before the depayloader)",
                "whipcast",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("application/x-rtp").build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        let result = self.parent_change_state(transition)?;
        if transition == gst::StateChange::PausedToReady {
            self.restart();
        }
        Ok(result)
    }
}
