//! MP4 tracks that never got a sample description (sans-IO). mp4mux writes a `trak` for every
//! pad it was given, also for one that never received caps (a publisher that negotiated audio
//! and sent none): its `stsd` then has no entry and its `mdhd` a time scale of 0, and ffmpeg
//! refuses the whole file ("invalid STSD entries 0"). [`without_empty_tracks`] gives a `moov` of
//! the same size without such tracks, the bytes freed covered by a `free` box, so that nothing
//! after it moves (fragments address their data from their own `moof`).

/// Box header: (type, total size, header length), for 32-bit and 64-bit sizes.
fn box_at(data: &[u8], at: usize) -> Option<([u8; 4], usize, usize)> {
    let head = data.get(at..at + 8)?;
    let kind = [head[4], head[5], head[6], head[7]];
    match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
        1 => {
            let large = data.get(at + 8..at + 16)?;
            let size = usize::try_from(u64::from_be_bytes(large.try_into().ok()?)).ok()?;
            (size >= 16).then_some((kind, size, 16))
        }
        size if size >= 8 => Some((kind, size as usize, 8)),
        _ => None,
    }
}

/// A box found in a body: (type, offset, size, header length).
type Child = ([u8; 4], usize, usize, usize);

/// The child boxes of the box body `data[start..end]`.
fn children(data: &[u8], start: usize, end: usize) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let (kind, size, header) = box_at(data, at)?;
        if at + size > end {
            return None;
        }
        out.push((kind, at, size, header));
        at += size;
    }
    Some(out)
}

/// The first child of type `kind` in a box body: (offset, size, header length).
fn child(data: &[u8], start: usize, end: usize, kind: &[u8; 4]) -> Option<(usize, usize, usize)> {
    children(data, start, end)?.into_iter().find(|(k, ..)| k == kind).map(|(_, at, size, header)| (at, size, header))
}

/// Whether the `trak` at `at` has a sample description with at least one entry.
fn described(data: &[u8], at: usize, size: usize, header: usize) -> Option<bool> {
    let mut range = (at + header, at + size);
    for kind in [b"mdia", b"minf", b"stbl"] {
        let (at, size, header) = child(data, range.0, range.1, kind)?;
        range = (at + header, at + size);
    }
    let (at, _, header) = child(data, range.0, range.1, b"stsd")?;
    // version and flags (4 bytes), then the entry count.
    let count = data.get(at + header + 4..at + header + 8)?;
    Some(u32::from_be_bytes(count.try_into().ok()?) > 0)
}

/// `moov` (the whole box) without its tracks that have no sample description, as many bytes
/// long (a `free` box after it); `None` when there is none to leave out or it does not parse.
pub fn without_empty_tracks(moov: &[u8]) -> Option<Vec<u8>> {
    let (kind, size, header) = box_at(moov, 0)?;
    if &kind != b"moov" || size != moov.len() || header != 8 {
        return None;
    }
    let boxes = children(moov, header, size)?;
    let mut body = Vec::with_capacity(size);
    let mut dropped = false;
    for (kind, at, size, header) in boxes {
        // A trak that does not parse is kept: we leave out only what we know is empty.
        if &kind == b"trak" && described(moov, at, size, header) == Some(false) {
            dropped = true;
            continue;
        }
        body.extend_from_slice(&moov[at..at + size]);
    }
    let free = size - 8 - body.len();
    if !dropped || free < 8 {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32::try_from(8 + body.len()).ok()?.to_be_bytes());
    out.extend_from_slice(b"moov");
    out.extend_from_slice(&body);
    out.extend_from_slice(&u32::try_from(free).ok()?.to_be_bytes());
    out.extend_from_slice(b"free");
    out.resize(size, 0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    /// A trak whose stsd has `entries` entries (one dummy entry each).
    fn trak(entries: u32) -> Vec<u8> {
        let mut stsd = vec![0, 0, 0, 0];
        stsd.extend_from_slice(&entries.to_be_bytes());
        for _ in 0..entries {
            stsd.extend(bx(b"avc1", &[1, 2, 3]));
        }
        let stbl = bx(b"stbl", &[bx(b"stsd", &stsd), bx(b"stts", &[0; 8])].concat());
        let minf = bx(b"minf", &stbl);
        let mdia = bx(b"mdia", &[bx(b"mdhd", &[0; 24]), minf].concat());
        bx(b"trak", &[bx(b"tkhd", &[0; 84]), mdia].concat())
    }

    #[test]
    fn an_empty_track_goes_and_the_box_keeps_its_size() {
        let (video, audio) = (trak(1), trak(0));
        let moov = bx(b"moov", &[bx(b"mvhd", &[7; 100]), video.clone(), audio.clone(), bx(b"mvex", &[9; 32])].concat());
        let fixed = without_empty_tracks(&moov).unwrap();
        assert_eq!(fixed.len(), moov.len());
        let expected = bx(b"moov", &[bx(b"mvhd", &[7; 100]), video, bx(b"mvex", &[9; 32])].concat());
        assert_eq!(&fixed[..expected.len()], &expected[..]);
        let free = &fixed[expected.len()..];
        assert_eq!(
            (&free[4..8], u32::from_be_bytes(free[..4].try_into().unwrap()) as usize),
            (&b"free"[..], free.len())
        );
        assert_eq!(without_empty_tracks(&fixed[..expected.len()]), None, "nothing left to drop");
    }

    #[test]
    fn described_tracks_and_unreadable_input_are_left_alone() {
        let moov = bx(b"moov", &[bx(b"mvhd", &[0; 100]), trak(1), trak(2)].concat());
        assert_eq!(without_empty_tracks(&moov), None);
        assert_eq!(without_empty_tracks(b"not an mp4 box at all"), None);
        let mut truncated = bx(b"moov", &[trak(1), trak(0)].concat());
        truncated.truncate(truncated.len() - 3);
        assert_eq!(without_empty_tracks(&truncated), None);
        // A trak too short to say: kept.
        let odd = bx(b"moov", &[trak(1), bx(b"trak", &[0; 4])].concat());
        assert_eq!(without_empty_tracks(&odd), None);
    }
}
