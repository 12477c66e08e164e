use super::*;

fn mp4_box(kind: &[u8; 4], body: usize) -> Vec<u8> {
    let mut b = ((8 + body) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.resize(8 + body, 0xAB);
    b
}

/// Pushes `chunks` and returns the cut after each.
fn cuts(container: Container, chunks: &[&[u8]]) -> Vec<Cut> {
    let mut b = Boundaries::new(container);
    chunks.iter().map(|c| b.push(c)).collect()
}

#[test]
fn mp4_fragments_end_after_their_mdat() {
    let (ftyp, moov, moof, mdat) =
        (mp4_box(b"ftyp", 24), mp4_box(b"moov", 800), mp4_box(b"moof", 400), mp4_box(b"mdat", 5000));
    // qtmux pushes the moof, the mdat header, then each sample.
    let got = cuts(Container::Mp4, &[&ftyp, &moov, &moof, &mdat[..8], &mdat[8..2000], &mdat[2000..], &moof, &mdat]);
    use Cut::*;
    assert_eq!(got, [Boundary, Boundary, Inside, Inside, Inside, Boundary, Inside, Boundary]);
}

#[test]
fn headers_split_across_buffers_and_64_bit_sizes() {
    let mut large = 1u32.to_be_bytes().to_vec();
    large.extend_from_slice(b"mdat");
    large.extend_from_slice(&(16u64 + 10).to_be_bytes());
    large.extend_from_slice(&[0; 10]);
    let got = cuts(Container::Mp4, &[&large[..3], &large[3..12], &large[12..20], &large[20..]]);
    assert_eq!(got, [Cut::Inside, Cut::Inside, Cut::Inside, Cut::Boundary]);
}

#[test]
fn an_mdat_of_unknown_size_gives_no_cuts() {
    let mut open = 0u32.to_be_bytes().to_vec();
    open.extend_from_slice(b"mdat");
    assert_eq!(
        cuts(Container::Mp4, &[&mp4_box(b"ftyp", 8), &open, &[1, 2, 3]]),
        [Cut::Boundary, Cut::Unframed, Cut::Unframed]
    );
    assert_eq!(cuts(Container::Mp4, &[&[0, 0, 0, 3, b'x', b'x', b'x', b'x']]), [Cut::Unframed], "size < header");
}

#[test]
fn patches_are_not_parsed_and_parsing_resumes_at_the_end() {
    let mut b = Boundaries::new(Container::Mp4);
    assert_eq!(b.push(&mp4_box(b"ftyp", 8)), Cut::Boundary);
    assert_eq!(b.push(&mp4_box(b"moov", 100)), Cut::Boundary);
    b.seek(20);
    assert_eq!(b.push(&[0; 8]), Cut::Patch);
    b.seek(16 + 108);
    assert!(b.at_boundary());
    assert_eq!(b.push(&mp4_box(b"mfra", 30)), Cut::Boundary);
    // A patch that reaches the end and goes on appending: no framing to trust.
    b.seek(16 + 108 + 38 - 4);
    assert_eq!(b.push(&[0; 4]), Cut::Patch);
    b.seek(16 + 108 + 38 - 4);
    assert_eq!(b.push(&[0; 8]), Cut::Unframed);
}

#[test]
fn an_mp4_patch_must_fit_the_box_it_rewrites() {
    let (ftyp, moov, moof, mdat) =
        (mp4_box(b"ftyp", 8), mp4_box(b"moov", 100), mp4_box(b"moof", 40), mp4_box(b"mdat", 500));
    let mut b = Boundaries::new(Container::Mp4);
    for unit in [&ftyp, &moov, &moof, &mdat] {
        b.push(unit);
    }
    let end = b.end();
    // The moov again, same size: written. Larger (a new sample description): refused, all
    // of it. Smaller: written, then a free box over the rest.
    b.seek(16);
    assert_eq!(b.push(&mp4_box(b"moov", 100)), Cut::Patch);
    b.seek(16);
    let larger = mp4_box(b"moov", 140);
    assert_eq!(b.push(&larger[..60]), Cut::Refused);
    assert_eq!(b.push(&larger[60..]), Cut::Refused);
    b.seek(16);
    assert_eq!(b.push(&mp4_box(b"moov", 80)), Cut::PatchThenFree(20));
    assert_eq!(free_box(20), [0, 0, 0, 20, b'f', b'r', b'e', b'e']);
    // Bytes inside the moov: written; running past its end into the fragment: refused.
    b.seek(30);
    assert_eq!(b.push(&[0; 40]), Cut::Patch);
    b.seek(100);
    assert_eq!(b.push(&[0; 40]), Cut::Refused);
    // Other boxes are the muxer's business (a non-fragmented file's mdat header, say).
    b.seek(0);
    assert_eq!(b.push(&[0; 24]), Cut::Patch);
    // Back at the end, appending goes on as before.
    b.seek(end);
    assert_eq!(b.push(&mp4_box(b"mfra", 16)), Cut::Boundary);
}

/// An EBML element: `id` as written, a 1-, 2- or 8-byte size, `len` bytes of content.
fn element(id: &[u8], len: usize, size_bytes: usize) -> Vec<u8> {
    let mut e = id.to_vec();
    match size_bytes {
        1 => e.push(0x80 | len as u8),
        2 => e.extend_from_slice(&(0x4000u16 | len as u16).to_be_bytes()),
        _ => e.extend_from_slice(&(0x0100_0000_0000_0000u64 | len as u64).to_be_bytes()),
    }
    e.resize(e.len() + len, 0xA3);
    e
}

/// An EBML element with a 1-byte size and this body.
fn with_body(id: &[u8], body: &[u8]) -> Vec<u8> {
    let mut e = id.to_vec();
    e.push(0x80 | body.len() as u8);
    e.extend_from_slice(body);
    e
}

/// Tracks: 1 video, 2 audio (number and type in either order).
fn two_tracks() -> Vec<u8> {
    let video = with_body(&[0xAE], &[0xD7, 0x81, 1, 0x83, 0x81, 1, 0x86, 0x85, b'V', b'_', b'V', b'P', b'8']);
    let audio = with_body(&[0xAE], &[0x83, 0x81, 2, 0xD7, 0x81, 2, 0x86, 0x86, b'A', b'_', b'O', b'P', b'U', b'S']);
    with_body(&[0x16, 0x54, 0xAE, 0x6B], &[video, audio].concat())
}

/// A SimpleBlock of `track` with these flags and `len` bytes of frame.
fn simple_block(track: u8, flags: u8, len: usize) -> Vec<u8> {
    let mut body = vec![0x80 | track, 0x00, 0x14, flags];
    body.resize(4 + len, 0x55);
    [vec![0xA3], (0x4000u16 | body.len() as u16).to_be_bytes().to_vec(), body].concat()
}

#[test]
fn matroska_blocks_inside_open_clusters() {
    let ebml = element(&[0x1A, 0x45, 0xDF, 0xA3], 20, 8);
    let segment_unknown = [0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let cluster = [0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let timecode = element(&[0xE7], 2, 1);
    let (video, audio) = (simple_block(1, 0x80, 5239), simple_block(2, 0x00, 300));
    // matroskamux pushes a block's header (ID, size, track, time, flags) and its payload apart.
    let mut b = Boundaries::new(Container::Matroska);
    let mut got = Vec::new();
    let mut flags = Vec::new();
    for chunk in [
        &ebml[..],
        &segment_unknown,
        &two_tracks(),
        &cluster,
        &timecode,
        &video[..7],
        &video[7..],
        &audio[..7],
        &audio[7..],
    ] {
        got.push(b.push(chunk));
        flags.push(b.audio_key_flags().to_vec());
    }
    use Cut::*;
    assert_eq!(got, [Boundary, Boundary, Boundary, Boundary, Boundary, Inside, Block, Inside, Block]);
    // The audio block's flags byte (its 7th byte: ID, 2-byte size, track, timecode) lacks the
    // key flag; the video block's has it.
    let expected: Vec<Vec<usize>> = (0..9).map(|i| if i == 7 { vec![6] } else { vec![] }).collect();
    assert_eq!(flags, expected);
}

#[test]
fn audio_key_flags_are_found_byte_by_byte_too() {
    let stream = [
        element(&[0x1A, 0x45, 0xDF, 0xA3], 4, 1),
        vec![0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        two_tracks(),
        vec![0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        simple_block(2, 0x00, 3),
        simple_block(1, 0x00, 3),
        simple_block(2, 0x80, 3),
        simple_block(2, 0x00, 0),
    ]
    .concat();
    let mut b = Boundaries::new(Container::Matroska);
    let found: Vec<usize> = (0..stream.len())
        .filter(|&i| !b.push(&stream[i..i + 1]).eq(&Cut::Unframed) && !b.audio_key_flags().is_empty())
        .collect();
    let whole = {
        let mut b = Boundaries::new(Container::Matroska);
        b.push(&stream);
        b.audio_key_flags().to_vec()
    };
    assert_eq!(found, whole);
    // The first and the last audio blocks (the last one with no frame bytes at all).
    assert_eq!(whole.len(), 2, "{whole:?}");
    assert!(whole.iter().all(|&i| stream[i] == 0x00));
}

#[test]
fn ebml_sizes() {
    assert_eq!(ebml_header(&[0xA3, 0x54, 0x7B]), Some((0xA3, Some(0x147B))));
    assert_eq!(ebml_header(&[0xE7, 0x82]), Some((0xE7, Some(2))));
    assert_eq!(ebml_header(&[0xA3, 0xFF]), Some((0xA3, None)), "1-byte unknown size");
    assert_eq!(ebml_header(&[0x1F, 0x43, 0xB6, 0x75, 0x10, 0, 0, 0x10]), Some((EBML_CLUSTER, Some(0x10))));
    assert_eq!(ebml_header_len(&[0x00]), None, "no vint starts with 0x00");
    assert_eq!(ebml_header_len(&[0x08]), None, "IDs are at most 4 bytes");
    assert_eq!(ebml_header_len(&[0xA3]), Some(2));
    assert_eq!(ebml_header_len(&[0xA3, 0x01]), Some(9));
}

#[test]
fn cuts_do_not_depend_on_how_the_stream_is_split() {
    // The same stream pushed whole and byte by byte ends on the same boundaries.
    let mut stream = Vec::new();
    let mut ends = Vec::new();
    for (kind, len) in [(b"ftyp", 16), (b"moov", 90), (b"moof", 40), (b"mdat", 300), (b"moof", 40), (b"mdat", 7)] {
        stream.extend(mp4_box(kind, len));
        ends.push(stream.len());
    }
    let mut b = Boundaries::new(Container::Mp4);
    let boundaries: Vec<usize> =
        (0..stream.len()).filter(|&i| b.push(&stream[i..i + 1]) == Cut::Boundary).map(|i| i + 1).collect();
    assert_eq!(boundaries, [ends[0], ends[1], ends[3], ends[5]]);
}
