//! Where a muxer's byte stream can be cut: the sans-IO core of `fragmentsync`.
//!
//! A file killed mid-write ends wherever the last write stopped. Demuxers read a file that ends
//! between two MP4 fragments (`moof` + `mdat`) or between two Matroska elements of a cluster
//! cleanly, but one that ends inside them hands a truncated frame to the decoder (ffmpeg's mov
//! demuxer does) or reports an error. [`Boundaries`] follows the container's own framing (box and
//! element sizes) and says after which buffer the stream stands on such a boundary, so that the
//! element can hand the sink whole units.
//!
//! Only what the muxer appends is followed. When it seeks back to patch a header (a cluster size,
//! the `moov` at the end), the caller says so with [`Boundaries::seek`] and the patch is not
//! parsed; parsing resumes when the muxer comes back to the end of the stream. An MP4 patch must
//! fit the box it rewrites: mp4mux rewrites its `moov` at the end, and when the stream's caps
//! changed (a new resolution: one more sample description) that `moov` is larger than the first
//! one and would overwrite the fragment after it, so it is refused ([`Cut::Refused`]); a smaller
//! one is followed by a `free` box over the rest of the old one ([`Cut::PatchThenFree`]).

/// The framing a stream is parsed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// ISO BMFF (mp4mux, qtmux): top-level boxes; a `moof` belongs with the `mdat` after it.
    Mp4,
    /// Matroska and WebM: EBML elements; the Segment and Clusters are entered, everything else
    /// (blocks, cues, tags) is a unit of its own.
    Matroska,
}

impl Container {
    /// The container of a muxer's source caps (`video/quicktime`, `video/webm`, ...).
    pub fn from_caps_name(name: &str) -> Option<Container> {
        match name {
            "video/quicktime" | "video/mp4" | "audio/x-m4a" => Some(Container::Mp4),
            "video/x-matroska" | "video/webm" | "audio/x-matroska" | "audio/webm" => Some(Container::Matroska),
            _ => None,
        }
    }
}

/// Matroska elements whose content is parsed as more elements (the rest are skipped whole).
const EBML_SEGMENT: u32 = 0x1853_8067;
const EBML_CLUSTER: u32 = 0x1F43_B675;
/// A frame or two in a Matroska cluster: small and many, written in batches.
const EBML_SIMPLE_BLOCK: u32 = 0xA3;
const EBML_BLOCK_GROUP: u32 = 0xA0;
/// Where the tracks are described: entered to learn which track numbers are audio.
const EBML_TRACKS: u32 = 0x1654_AE6B;
const EBML_TRACK_ENTRY: u32 = 0xAE;
const EBML_TRACK_NUMBER: u32 = 0xD7;
const EBML_TRACK_TYPE: u32 = 0x83;
const TRACK_TYPE_AUDIO: u64 = 2;
/// A SimpleBlock's flags byte: the frame is a key frame.
const SIMPLE_BLOCK_KEY: u8 = 0x80;

/// Where the parser stands in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// Between two units: the next byte starts a header.
    Boundary,
    /// Reading a header (its first bytes so far).
    Header(Vec<u8>),
    /// Inside the body of a unit, this many bytes left.
    Body(u64),
    /// Reading a small unsigned value (a track's number or type): its bytes so far, bytes left.
    Value(u32, Vec<u8>, u64),
    /// Reading a SimpleBlock up to its flags byte (track number, timecode): bytes so far, body
    /// bytes left.
    BlockHead(Vec<u8>, u64),
    /// The framing cannot be followed (an unknown size, a malformed header): no more boundaries.
    Lost,
}

/// Follows a muxer's output and tells where it can be cut.
#[derive(Debug, Clone)]
pub struct Boundaries {
    container: Container,
    position: Position,
    /// Bytes of the stream the muxer has appended so far (the end of the file).
    end: u64,
    /// Where the muxer writes now, when it went back to patch what it wrote before.
    patching: Option<u64>,
    /// An MP4 `moof` was read: the next boundary is after its `mdat`.
    open_fragment: bool,
    /// The last unit begun is a Matroska block.
    in_block: bool,
    /// Where the unit being read began.
    unit_start: u64,
    /// MP4 `moov` boxes written (offset, size): mp4mux rewrites its first one at the end.
    moovs: Vec<(u64, u64)>,
    /// The patch in progress was refused: the rest of it is dropped too.
    patch_refused: bool,
    /// The Matroska track entry being read: its number and type so far.
    track_entry: (Option<u64>, Option<u64>),
    /// Matroska audio track numbers.
    audio_tracks: Vec<u64>,
    /// Indexes in the last buffer pushed of audio SimpleBlocks' flags bytes without the key flag.
    audio_key_flags: Vec<usize>,
}

/// What one buffer did to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After this buffer the stream ends on a boundary: everything so far can be written out.
    Boundary,
    /// The same after a Matroska block: one frame, written with the next ones to save writes.
    Block,
    /// This buffer leaves a unit open.
    Inside,
    /// The muxer is rewriting earlier bytes (a seek back): write this as it comes.
    Patch,
    /// A patch that is a whole MP4 box smaller than the one it replaces: write it, then a `free`
    /// box header of this many bytes (see [`free_box`]) over what is left of the old one.
    PatchThenFree(u32),
    /// A patch that would overwrite what follows the box it rewrites: drop it.
    Refused,
    /// The framing is lost (or was never known): write everything as it comes.
    Unframed,
}

impl Boundaries {
    /// A follower of a stream of `container` that starts at its first byte (on a boundary).
    pub fn new(container: Container) -> Boundaries {
        Boundaries {
            container,
            position: Position::Boundary,
            end: 0,
            patching: None,
            open_fragment: false,
            in_block: false,
            unit_start: 0,
            moovs: Vec::new(),
            patch_refused: false,
            track_entry: (None, None),
            audio_tracks: Vec::new(),
            audio_key_flags: Vec::new(),
        }
    }

    /// The muxer continues writing at byte `offset` (a byte segment or a buffer offset).
    pub fn seek(&mut self, offset: u64) {
        self.patching = (offset != self.end).then_some(offset);
        self.patch_refused = false;
    }

    /// Bytes the muxer has appended so far (patches not counted): the end of the file.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Where, in the buffer last pushed, an audio SimpleBlock's flags byte lacks the key flag.
    /// Every audio frame is a key frame; GStreamer 1.22's matroskamux/webmmux leave the flag unset,
    /// and Chromium then cannot start playing the file ("demuxer seek failed"). The caller sets
    /// it (`byte |= 0x80`).
    pub fn audio_key_flags(&self) -> &[usize] {
        &self.audio_key_flags
    }

    /// Whether the last bytes pushed left the stream on a boundary.
    pub fn at_boundary(&self) -> bool {
        self.patching.is_none() && self.position == Position::Boundary && !self.open_fragment
    }

    /// The next buffer the muxer wrote.
    pub fn push(&mut self, data: &[u8]) -> Cut {
        if let Some(start) = self.patching {
            let at = start + data.len() as u64;
            let cut = if self.patch_refused { Cut::Refused } else { self.check_patch(start, data) };
            self.patching = Some(at);
            if cut == Cut::Refused {
                self.patch_refused = true;
                return cut;
            }
            if at == self.end {
                self.patching = None;
            } else if at > self.end {
                // The patch ran past the end: it appended too, so the framing is unknown.
                self.end = at;
                self.patching = None;
                self.position = Position::Lost;
                return Cut::Unframed;
            }
            return cut;
        }
        self.end += data.len() as u64;
        self.audio_key_flags.clear();
        let mut rest = data;
        while !rest.is_empty() {
            match &mut self.position {
                Position::Lost => return Cut::Unframed,
                Position::Value(id, bytes, left) => {
                    bytes.push(rest[0]);
                    rest = &rest[1..];
                    *left -= 1;
                    if *left == 0 {
                        let value = bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
                        match *id {
                            EBML_TRACK_NUMBER => self.track_entry.0 = Some(value),
                            _ => self.track_entry.1 = Some(value),
                        }
                        if let (Some(number), Some(TRACK_TYPE_AUDIO)) = self.track_entry {
                            self.audio_tracks.push(number);
                        }
                        self.position = Position::Boundary;
                    }
                }
                Position::BlockHead(bytes, left) => {
                    let at = data.len() - rest.len();
                    bytes.push(rest[0]);
                    rest = &rest[1..];
                    *left -= 1;
                    // The track number (an EBML number of `n` bytes), a 16-bit timecode, the flags.
                    let Some(n) = vint_len(bytes[0]) else {
                        self.position = if *left == 0 { Position::Boundary } else { Position::Body(*left) };
                        continue;
                    };
                    if bytes.len() == n + 3 {
                        let track =
                            bytes[1..n].iter().fold(u64::from(bytes[0]) & (0xFF >> n), |t, &b| (t << 8) | u64::from(b));
                        if bytes[n + 2] & SIMPLE_BLOCK_KEY == 0 && self.audio_tracks.contains(&track) {
                            self.audio_key_flags.push(at);
                        }
                    }
                    if bytes.len() == n + 3 || *left == 0 {
                        self.position = if *left == 0 { Position::Boundary } else { Position::Body(*left) };
                    }
                }
                Position::Body(left) => {
                    let take = (*left).min(rest.len() as u64);
                    *left -= take;
                    rest = &rest[take as usize..];
                    if *left == 0 {
                        self.position = Position::Boundary;
                    }
                }
                Position::Boundary => {
                    self.unit_start = self.end - rest.len() as u64;
                    self.position = Position::Header(Vec::with_capacity(16));
                }
                Position::Header(bytes) => {
                    // One byte at a time: a header says its own length as its first bytes come.
                    bytes.push(rest[0]);
                    rest = &rest[1..];
                    let needed = match self.container {
                        Container::Mp4 => mp4_header_len(bytes),
                        Container::Matroska => ebml_header_len(bytes),
                    };
                    match needed {
                        None => self.position = Position::Lost,
                        Some(n) if n == bytes.len() => {
                            let header = std::mem::take(bytes);
                            self.position = self.enter(&header);
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if self.position == Position::Lost {
            Cut::Unframed
        } else if self.at_boundary() {
            if self.in_block { Cut::Block } else { Cut::Boundary }
        } else {
            Cut::Inside
        }
    }

    /// Whether a patch of `data` at `start` may be written: one that rewrites a `moov` must stay
    /// inside it, or replace it whole by one no larger. (Other patches, such as a non-fragmented
    /// file's `mdat` size, are the muxer's business.)
    fn check_patch(&self, start: u64, data: &[u8]) -> Cut {
        let len = data.len() as u64;
        if start + len > self.end {
            return Cut::Patch;
        }
        let Some(&(box_start, box_size)) = self.moovs.iter().find(|(s, n)| (*s..s + n).contains(&start)) else {
            return Cut::Patch;
        };
        let header_len = mp4_header_len(data).filter(|&n| n <= data.len());
        let new_size =
            header_len.and_then(|n| mp4_header(&data[..n])).and_then(|(_, body)| Some(header_len? as u64 + body?));
        match new_size {
            Some(size) if start == box_start => {
                let gap = box_size.saturating_sub(size);
                if size == box_size && len <= box_size {
                    // The box replaced by one of the same size.
                    Cut::Patch
                } else if size == len && gap >= 8 && gap <= u64::from(u32::MAX) {
                    Cut::PatchThenFree(gap as u32)
                } else {
                    Cut::Refused
                }
            }
            // Bytes inside the box rewritten.
            _ if start + len <= box_start + box_size => Cut::Patch,
            _ => Cut::Refused,
        }
    }

    /// The position after a complete header.
    fn enter(&mut self, header: &[u8]) -> Position {
        match self.container {
            Container::Mp4 => {
                let Some((kind, body)) = mp4_header(header) else { return Position::Lost };
                match &kind {
                    b"moof" => self.open_fragment = true,
                    b"mdat" => self.open_fragment = false,
                    b"moov" => {
                        if let Some(n) = body {
                            self.moovs.push((self.unit_start, header.len() as u64 + n));
                        }
                    }
                    _ => {}
                }
                match body {
                    Some(0) => Position::Boundary,
                    Some(n) => Position::Body(n),
                    // A box that runs to the end of the file (a non-fragmented mdat): no cuts.
                    None => Position::Lost,
                }
            }
            Container::Matroska => {
                let Some((id, size)) = ebml_header(header) else { return Position::Lost };
                self.in_block = matches!(id, EBML_SIMPLE_BLOCK | EBML_BLOCK_GROUP);
                if id == EBML_TRACK_ENTRY {
                    self.track_entry = (None, None);
                }
                match (id, size) {
                    (EBML_SEGMENT | EBML_CLUSTER | EBML_TRACKS | EBML_TRACK_ENTRY, _) => Position::Boundary,
                    (_, Some(0)) => Position::Boundary,
                    (EBML_TRACK_NUMBER | EBML_TRACK_TYPE, Some(n @ 1..=8)) => Position::Value(id, Vec::new(), n),
                    (EBML_SIMPLE_BLOCK, Some(n)) => Position::BlockHead(Vec::with_capacity(8), n),
                    (_, Some(n)) => Position::Body(n),
                    (_, None) => Position::Lost,
                }
            }
        }
    }
}

/// The header of an MP4 `free` box of `size` bytes (at least 8), its body what was there before.
pub fn free_box(size: u32) -> [u8; 8] {
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&size.to_be_bytes());
    header[4..].copy_from_slice(b"free");
    header
}

/// Bytes of the box header that starts with `bytes`: 8, or 16 with a 64-bit size.
fn mp4_header_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < 4 {
        return Some(8);
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    match size {
        1 => Some(16),
        0 | 8.. => Some(8),
        // A size smaller than its own header.
        _ => None,
    }
}

/// A box's type and body size (`None`: to the end of the file).
fn mp4_header(header: &[u8]) -> Option<([u8; 4], Option<u64>)> {
    let size = u32::from_be_bytes(header.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = header.get(4..8)?.try_into().ok()?;
    let body = match size {
        0 => None,
        1 => Some(u64::from_be_bytes(header.get(8..16)?.try_into().ok()?).checked_sub(16)?),
        n => Some(u64::from(n).checked_sub(8)?),
    };
    Some((kind, body))
}

/// Length of an EBML variable-size integer from its first byte (1-8), `None` for 0x00.
fn vint_len(first: u8) -> Option<usize> {
    (first != 0).then(|| first.leading_zeros() as usize + 1)
}

/// Bytes of the element header that starts with `bytes` (ID of 1-4 bytes, size of 1-8).
fn ebml_header_len(bytes: &[u8]) -> Option<usize> {
    let Some(&first) = bytes.first() else { return Some(1) };
    let id_len = vint_len(first).filter(|&n| n <= 4)?;
    match bytes.get(id_len) {
        None => Some(id_len + 1),
        Some(&size_first) => Some(id_len + vint_len(size_first)?),
    }
}

/// An element's ID (with its length marker, as Matroska writes IDs) and size (`None`: unknown).
fn ebml_header(header: &[u8]) -> Option<(u32, Option<u64>)> {
    let id_len = vint_len(*header.first()?)?;
    let id = header.get(..id_len)?.iter().fold(0u32, |id, &b| (id << 8) | u32::from(b));
    let size_bytes = header.get(id_len..)?;
    let size_len = vint_len(*size_bytes.first()?)?;
    let size_bytes = size_bytes.get(..size_len)?;
    let marker = 0x80u8 >> (size_len - 1);
    let mut value = u64::from(size_bytes[0] & (marker - 1));
    let mut all_ones = size_bytes[0] & (marker - 1) == marker - 1;
    for &b in &size_bytes[1..] {
        value = (value << 8) | u64::from(b);
        all_ones &= b == 0xFF;
    }
    Some((id, (!all_ones).then_some(value)))
}

#[cfg(test)]
mod tests;
