use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::fragments::{Boundaries, Container, Cut, free_box};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("fragmentsync", gst::DebugColorFlags::empty(), Some("Whole fragments to the file sink"))
});

const DEFAULT_INTERVAL_MS: u32 = 500;
const DEFAULT_FSYNC: bool = true;
/// Past this much held data a unit is written even if it is not complete (memory stays bounded).
const MAX_PENDING_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Copy)]
struct Settings {
    interval: Duration,
    fsync: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { interval: Duration::from_millis(DEFAULT_INTERVAL_MS.into()), fsync: DEFAULT_FSYNC }
    }
}

#[derive(Default)]
struct State {
    /// The container's framing, once the caps said which; `None`: buffers go through as they come.
    boundaries: Option<Boundaries>,
    /// Buffers since the last write, ending inside a unit or waiting for `interval`.
    pending: Vec<gst::Buffer>,
    pending_bytes: usize,
    last_write: Option<Instant>,
    /// Where the stream would end (bytes) once the list taken last is written.
    taken_end: u64,
    /// Where the stream ends on the sink's side: every byte before it was written whole.
    committed: u64,
}

pub struct FragmentSync {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

impl FragmentSync {
    /// Takes what is held (plus `extra`) as one list, the last buffer marked for fsync.
    fn take_list(&self, state: &mut State, extra: Option<gst::Buffer>, now: Instant) -> Option<gst::BufferList> {
        let mut buffers = std::mem::take(&mut state.pending);
        buffers.extend(extra);
        state.pending_bytes = 0;
        if buffers.is_empty() {
            return None;
        }
        if self.settings.lock().unwrap().fsync
            && let Some(last) = buffers.last_mut()
        {
            last.make_mut().set_flags(gst::BufferFlags::SYNC_AFTER);
        }
        state.last_write = Some(now);
        state.taken_end = state.boundaries.as_ref().map_or(0, Boundaries::end);
        let mut list = gst::BufferList::new_sized(buffers.len());
        {
            let list = list.get_mut().unwrap();
            for buffer in buffers {
                list.add(buffer);
            }
        }
        Some(list)
    }

    fn push(&self, list: Option<gst::BufferList>) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Some(list) = list else { return Ok(gst::FlowSuccess::Ok) };
        let flow = self.srcpad.push_list(list);
        if flow.is_ok() {
            let mut state = self.state.lock().unwrap();
            state.committed = state.taken_end;
        } else {
            // A full disk, say: the file is valid up to `committed` (an application may cut it there).
            gst::warning!(
                CAT,
                imp = self,
                "Write failed ({flow:?}): the stream is whole up to byte {}",
                self.state.lock().unwrap().committed
            );
        }
        flow
    }

    fn chain(&self, mut buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let now = Instant::now();
        let interval = self.settings.lock().unwrap().interval;
        let list = {
            let mut state = self.state.lock().unwrap();
            let Some(boundaries) = state.boundaries.as_mut() else {
                drop(state);
                return self.srcpad.push(buffer);
            };
            let cut = match buffer.map_readable() {
                Ok(map) => boundaries.push(map.as_slice()),
                Err(_) => {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ["Cannot read a buffer"]);
                    return Err(gst::FlowError::Error);
                }
            };
            if !boundaries.audio_key_flags().is_empty() {
                // Audio frames are key frames: say so, or Chromium will not play the file.
                let Ok(mut map) = buffer.make_mut().map_writable() else {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ["Cannot write a buffer"]);
                    return Err(gst::FlowError::Error);
                };
                for &at in boundaries.audio_key_flags() {
                    map[at] |= 0x80;
                }
            }
            match cut {
                Cut::Boundary | Cut::Block => {
                    state.pending_bytes += buffer.size();
                    state.pending.push(buffer);
                    // Fragments and headers go out at once; blocks once `interval` has passed.
                    let due =
                        cut == Cut::Boundary || state.last_write.is_none_or(|t| now.duration_since(t) >= interval);
                    if due || state.pending_bytes > MAX_PENDING_BYTES {
                        self.take_list(&mut state, None, now)
                    } else {
                        None
                    }
                }
                Cut::Inside => {
                    state.pending_bytes += buffer.size();
                    state.pending.push(buffer);
                    if state.pending_bytes > MAX_PENDING_BYTES {
                        gst::warning!(CAT, imp = self, "A unit over {MAX_PENDING_BYTES} bytes: written unfinished");
                        self.take_list(&mut state, None, now)
                    } else {
                        None
                    }
                }
                Cut::PatchThenFree(gap) => {
                    gst::info!(CAT, imp = self, "A smaller box rewritten: a free box covers the {gap} bytes left");
                    state.pending_bytes += buffer.size();
                    state.pending.push(buffer);
                    self.take_list(&mut state, Some(gst::Buffer::from_slice(free_box(gap))), now)
                }
                Cut::Refused => {
                    // mp4mux's moov at the end, grown by a caps change (a new sample description):
                    // written, it would overwrite the first fragment. The first moov stays.
                    gst::warning!(
                        CAT,
                        imp = self,
                        "Not rewriting a box with a larger one ({} bytes): the file keeps what it had",
                        buffer.size()
                    );
                    None
                }
                Cut::Patch | Cut::Unframed => {
                    if cut == Cut::Unframed && state.pending.is_empty() {
                        gst::debug!(CAT, imp = self, "Framing not followed: buffers go through as they come");
                    }
                    self.take_list(&mut state, Some(buffer), now)
                }
            }
        };
        self.push(list)
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        match event.view() {
            EventView::Caps(caps) => {
                let name = caps.caps().structure(0).map(|s| s.name().to_string()).unwrap_or_default();
                let container = Container::from_caps_name(&name);
                let mut state = self.state.lock().unwrap();
                // New caps in the middle of a stream keep the framing already followed.
                if state.boundaries.is_none() {
                    state.boundaries = container.map(Boundaries::new);
                    gst::debug!(CAT, imp = self, "{name}: {container:?}");
                }
            }
            EventView::Segment(segment) => {
                // A muxer going back to patch a header (or returning to the end) says so with a
                // byte segment: what is held goes out first, at the old position.
                if let Some(segment) = segment.segment().downcast_ref::<gst::format::Bytes>()
                    && let Some(start) = segment.start()
                {
                    if self.flush_held().is_err() {
                        return false;
                    }
                    if let Some(b) = self.state.lock().unwrap().boundaries.as_mut() {
                        b.seek(*start);
                    }
                }
            }
            EventView::Eos(_) if self.flush_held().is_err() => return false,
            EventView::FlushStop(_) => self.clear(),
            _ => {}
        }
        gst::Pad::event_default(pad, Some(&*self.obj()), event)
    }

    fn flush_held(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let list = {
            let mut state = self.state.lock().unwrap();
            self.take_list(&mut state, None, Instant::now())
        };
        self.push(list)
    }

    fn clear(&self) {
        *self.state.lock().unwrap() = State::default();
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FragmentSync {
    const NAME: &'static str = "GstFragmentSync";
    type Type = super::FragmentSync;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let sinkpad = gst::Pad::builder_from_template(&klass.pad_template("sink").unwrap())
            .chain_function(|_, parent, buffer| {
                FragmentSync::catch_panic_pad_function(parent, || Err(gst::FlowError::Error), |imp| imp.chain(buffer))
            })
            .event_function(|pad, parent, event| {
                FragmentSync::catch_panic_pad_function(parent, || false, |imp| imp.sink_event(pad, event))
            })
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        let srcpad = gst::Pad::builder_from_template(&klass.pad_template("src").unwrap())
            .flags(gst::PadFlags::PROXY_CAPS | gst::PadFlags::PROXY_ALLOCATION)
            .build();
        FragmentSync { sinkpad, srcpad, settings: Mutex::default(), state: Mutex::default() }
    }
}

impl ObjectImpl for FragmentSync {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Least time in ms between two writes of Matroska blocks: blocks that come sooner are held and written together (MP4 fragments and headers are written as they end)")
                    .maximum(60_000)
                    .default_value(DEFAULT_INTERVAL_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder("committed")
                    .nick("Committed bytes")
                    .blurb("Length of the stream (bytes) that the sink took in whole units: after a failed write (a full disk) the file is valid when cut to this length")
                    .read_only()
                    .build(),
                glib::ParamSpecBoolean::builder("fsync")
                    .nick("fsync")
                    .blurb("Mark each write for the sink to fsync (filesink does), so that it also survives a power cut")
                    .default_value(DEFAULT_FSYNC)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "interval" => settings.interval = Duration::from_millis(value.get::<u32>().expect("type checked").into()),
            "fsync" => settings.fsync = value.get().expect("type checked"),
            // GLib passes only the properties registered above.
            other => gst::warning!(CAT, imp = self, "No property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "interval" => (settings.interval.as_millis() as u32).to_value(),
            "fsync" => settings.fsync.to_value(),
            "committed" => self.state.lock().unwrap().committed.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for FragmentSync {}

impl ElementImpl for FragmentSync {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Fragment sync",
                "Generic",
                "Hands a file sink whole MP4 fragments and Matroska elements, each in one write followed by an fsync, so that a recording cut by a crash ends on a boundary (mp4mux fragment-duration=1000 ! fragmentsync ! filesink); keeps a final moov that grew from overwriting the first fragment, and marks Matroska audio blocks as key frames (Chromium needs it)",
                "whipcast",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
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
            self.clear();
        }
        Ok(result)
    }
}
