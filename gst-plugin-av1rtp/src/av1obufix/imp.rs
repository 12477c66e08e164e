use std::borrow::Cow;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::av1::fixer::{FixError, TuFixer};
use crate::framerate::{FramerateEstimator, INTERVALS};

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("av1obufix", gst::DebugColorFlags::empty(), Some("AV1 OBU size fixer")));

/// Used when neither the property, the bitstream, upstream caps nor the timestamps tell.
const FALLBACK_FRAMERATE: gst::Fraction = gst::Fraction::from_integer(30);

#[derive(Default)]
struct State {
    fixer: TuFixer,
    /// Framerate from upstream caps (an encoder's, say), if any.
    upstream_framerate: Option<gst::Fraction>,
    estimator: FramerateEstimator,
    /// The framerate in the caps we sent.
    framerate: Option<gst::Fraction>,
    caps_sent: bool,
    /// The sequence header the sent caps describe.
    caps_sequence: Option<crate::av1::sequence::SequenceHeader>,
    /// Buffers held while the framerate is being measured.
    held: Vec<gst::Buffer>,
    /// Sticky events that must follow our caps, held until the caps can be sent.
    held_events: Vec<gst::Event>,
    discont: bool,
    dropped: u64,
}

pub struct Av1ObuFix {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    framerate_setting: Mutex<gst::Fraction>,
    follow_resolution: Mutex<bool>,
    state: Mutex<State>,
}

enum Action {
    Push(Vec<gst::Buffer>, Vec<gst::Event>),
    Hold,
}

impl Av1ObuFix {
    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        if buffer.flags().contains(gst::BufferFlags::DISCONT) {
            state.discont = true;
        }
        let map = buffer.map_readable().map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["Failed to map buffer"]);
            gst::FlowError::Error
        })?;
        let fixed = match state.fixer.fix(&map) {
            Ok(fixed) => fixed,
            Err(e) => {
                state.dropped += 1;
                state.discont = true;
                match e {
                    FixError::WaitingForKeyframe => {
                        gst::debug!(CAT, imp = self, "Dropping temporal unit: {e}")
                    }
                    _ => gst::warning!(CAT, imp = self, "Dropping temporal unit: {e}"),
                }
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        let keyframe = fixed.keyframe;
        let new_sequence = fixed.new_sequence;
        let mut out = match fixed.data {
            Cow::Borrowed(_) => {
                drop(map);
                buffer
            }
            Cow::Owned(data) => {
                drop(map);
                let mut out = gst::Buffer::from_mut_slice(data);
                buffer
                    .copy_into(
                        out.get_mut().unwrap(),
                        gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS | gst::BufferCopyFlags::META,
                        ..,
                    )
                    .map_err(|_| gst::FlowError::Error)?;
                out
            }
        };
        {
            let out = out.make_mut();
            out.set_flags(gst::BufferFlags::empty());
            if !keyframe {
                out.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if std::mem::take(&mut state.discont) {
                out.set_flags(gst::BufferFlags::DISCONT);
            }
            if out.dts().is_none() {
                out.set_dts(out.pts());
            }
        }

        if new_sequence && state.caps_sent && self.sequence_needs_new_caps(&state) {
            // The decoder configuration changed: new caps before this TU.
            state.caps_sent = false;
        }
        let action = self.place(&mut state, out);
        drop(state);
        match action {
            Action::Hold => Ok(gst::FlowSuccess::Ok),
            Action::Push(buffers, events) => self.push_all(buffers, events),
        }
    }

    /// Decides the caps, holding buffers while the framerate is measured.
    fn place(&self, state: &mut State, buffer: gst::Buffer) -> Action {
        if state.caps_sent {
            let mut buffer = buffer;
            set_duration(&mut buffer, state.framerate);
            return Action::Push(vec![buffer], Vec::new());
        }
        let framerate = self.known_framerate(state).or_else(|| {
            let estimate = buffer.pts().and_then(|pts| state.estimator.push(pts.nseconds()));
            if estimate.is_none() && state.held.len() < INTERVALS {
                return None;
            }
            Some(estimate.map_or_else(|| self.measured_or_fallback(state), |(n, d)| gst::Fraction::new(n, d)))
        });
        state.held.push(buffer);
        match framerate {
            Some(framerate) => self.release(state, framerate),
            None => Action::Hold,
        }
    }

    /// Whether a new sequence header must go into new caps. A change of frame size alone stays
    /// in-band unless `caps-follow-resolution` is set: decoders follow in-band sequence headers,
    /// while matroskamux and mp4mux refuse caps changes (Chromium changes its resolution as its
    /// bitrate ramps up).
    fn sequence_needs_new_caps(&self, state: &State) -> bool {
        let (Some(new), Some(old)) = (state.fixer.sequence_header(), state.caps_sequence.as_ref()) else {
            return true;
        };
        let config = |s: &crate::av1::sequence::SequenceHeader| {
            (s.profile, s.bit_depth, s.mono_chrome, s.subsampling_x, s.subsampling_y)
        };
        if config(new) != config(old) || *self.follow_resolution.lock().unwrap() {
            return true;
        }
        gst::info!(
            CAT,
            imp = self,
            "Frame size now {}x{} (in-band); caps kept at {}x{} (caps-follow-resolution=false)",
            new.max_frame_width,
            new.max_frame_height,
            old.max_frame_width,
            old.max_frame_height
        );
        false
    }

    fn known_framerate(&self, state: &State) -> Option<gst::Fraction> {
        let setting = *self.framerate_setting.lock().unwrap();
        if setting.numer() > 0 {
            return Some(setting);
        }
        let from_stream = state
            .fixer
            .sequence_header()
            .and_then(|seq| seq.timing_info?.framerate())
            .and_then(|(n, d)| Some(gst::Fraction::new(i32::try_from(n).ok()?, i32::try_from(d).ok()?)));
        from_stream.or(state.upstream_framerate)
    }

    fn measured_or_fallback(&self, state: &State) -> gst::Fraction {
        match state.estimator.estimate() {
            Some((n, d)) => gst::Fraction::new(n, d),
            None => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "Cannot tell the framerate (no timing info, no timestamps); assuming {FALLBACK_FRAMERATE}. Set the framerate property to override"
                );
                FALLBACK_FRAMERATE
            }
        }
    }

    /// Sends caps for `framerate` and releases the held buffers and events.
    fn release(&self, state: &mut State, framerate: gst::Fraction) -> Action {
        let Some(caps) = self.caps(state, framerate) else {
            return Action::Hold;
        };
        gst::info!(CAT, imp = self, "Caps: {caps}");
        state.caps_sequence = state.fixer.sequence_header().cloned();
        state.framerate = Some(framerate);
        state.caps_sent = true;
        let mut events = vec![gst::event::Caps::new(&caps)];
        events.append(&mut state.held_events);
        let mut buffers = std::mem::take(&mut state.held);
        for buffer in &mut buffers {
            set_duration(buffer, Some(framerate));
        }
        Action::Push(buffers, events)
    }

    fn caps(&self, state: &State, framerate: gst::Fraction) -> Option<gst::Caps> {
        let seq = state.fixer.sequence_header()?;
        let av1c = state.fixer.av1c()?;
        Some(
            gst::Caps::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu")
                .field("parsed", true)
                .field("width", seq.max_frame_width as i32)
                .field("height", seq.max_frame_height as i32)
                .field("framerate", framerate)
                .field("profile", seq.profile_name())
                .field("bit-depth-luma", u32::from(seq.bit_depth))
                .field("bit-depth-chroma", u32::from(seq.bit_depth))
                .field("chroma-format", seq.chroma_format())
                .field("codec_data", gst::Buffer::from_mut_slice(av1c))
                .build(),
        )
    }

    fn push_all(&self, buffers: Vec<gst::Buffer>, events: Vec<gst::Event>) -> Result<gst::FlowSuccess, gst::FlowError> {
        for event in events {
            self.srcpad.push_event(event);
        }
        for buffer in buffers {
            self.srcpad.push(buffer)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// At EOS: caps from what was measured so far, and out with whatever is held.
    fn drain(&self) {
        let mut state = self.state.lock().unwrap();
        if state.caps_sent || state.held.is_empty() {
            let events = std::mem::take(&mut state.held_events);
            drop(state);
            let _ = self.push_all(Vec::new(), events);
            return;
        }
        let framerate = self.known_framerate(&state).unwrap_or_else(|| self.measured_or_fallback(&state));
        let action = self.release(&mut state, framerate);
        drop(state);
        if let Action::Push(buffers, events) = action {
            let _ = self.push_all(buffers, events);
        }
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(caps) => {
                let framerate = caps
                    .caps()
                    .structure(0)
                    .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
                    .filter(|f| f.numer() > 0);
                self.state.lock().unwrap().upstream_framerate = framerate;
                // Our own caps go out with the first temporal unit.
                return true;
            }
            EventView::FlushStop(_) => {
                let mut state = self.state.lock().unwrap();
                state.held.clear();
                state.fixer.resync();
                state.discont = true;
            }
            EventView::Eos(_) => self.drain(),
            _ => {}
        }
        if event.is_sticky() && event.type_() != gst::EventType::StreamStart && event.type_() != gst::EventType::Eos {
            let mut state = self.state.lock().unwrap();
            if !state.caps_sent {
                state.held_events.push(event);
                return true;
            }
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }
}

fn set_duration(buffer: &mut gst::Buffer, framerate: Option<gst::Fraction>) {
    let Some(framerate) = framerate.filter(|f| f.numer() > 0) else { return };
    if buffer.duration().is_some() {
        return;
    }
    let duration = gst::ClockTime::SECOND.mul_div_floor(framerate.denom() as u64, framerate.numer() as u64);
    buffer.make_mut().set_duration(duration);
}

#[glib::object_subclass]
impl ObjectSubclass for Av1ObuFix {
    const NAME: &'static str = "WhipcastAv1ObuFix";
    type Type = super::Av1ObuFix;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|_pad, parent, buffer| {
                Av1ObuFix::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |this| this.sink_chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                Av1ObuFix::catch_panic_pad_function(parent, || false, |this| this.sink_event(pad, event))
            })
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap()).build();
        Self {
            sinkpad,
            srcpad,
            framerate_setting: Mutex::new(gst::Fraction::new(0, 1)),
            follow_resolution: Mutex::new(false),
            state: Mutex::new(State { discont: true, ..Default::default() }),
        }
    }
}

impl ObjectImpl for Av1ObuFix {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                gst::ParamSpecFraction::builder("framerate")
                    .nick("Framerate")
                    .blurb("Framerate for the caps and buffer durations; 0/1 = from the sequence header's timing info, else upstream caps, else measured from the first timestamps")
                    .minimum(gst::Fraction::new(0, 1))
                    .maximum(gst::Fraction::new(i32::MAX, 1))
                    .default_value(gst::Fraction::new(0, 1))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("caps-follow-resolution")
                    .nick("Caps follow resolution")
                    .blurb("Send new caps when a sequence header changes only the frame size. Off: such changes stay in-band (decoders follow them) and the caps keep the first size, because matroskamux and mp4mux refuse caps changes")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("dropped")
                    .nick("Dropped")
                    .blurb("Temporal units dropped: before the first key frame, after a malformed one, or holding no frame data")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            "framerate" => *self.framerate_setting.lock().unwrap() = value.get().unwrap(),
            "caps-follow-resolution" => *self.follow_resolution.lock().unwrap() = value.get().unwrap(),
            _ => unreachable!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "framerate" => self.framerate_setting.lock().unwrap().to_value(),
            "caps-follow-resolution" => self.follow_resolution.lock().unwrap().to_value(),
            "dropped" => self.state.lock().unwrap().dropped.to_value(),
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

impl GstObjectImpl for Av1ObuFix {}

impl ElementImpl for Av1ObuFix {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "AV1 OBU size fixer",
                "Codec/Parser/Video",
                "Makes AV1 temporal units container-ready: minimal OBU size fields, one temporal delimiter per TU, av1C codec_data, framerate, durations and key-frame flags from the frame headers",
                "whipcast developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink_caps =
                gst::Caps::builder("video/x-av1").field("stream-format", "obu-stream").field("alignment", "tu").build();
            let src_caps = gst::Caps::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu")
                .field("parsed", true)
                .build();
            vec![
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &sink_caps).unwrap(),
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &src_caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            *self.state.lock().unwrap() = State { discont: true, ..Default::default() };
        }
        self.parent_change_state(transition)
    }
}
