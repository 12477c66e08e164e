//! Turns AV1 temporal units as depayloaders deliver them (OBUs without size fields, with wrong or
//! non-minimal ones, without or with several temporal delimiters, padding and tile lists) into a
//! container-ready low-overhead bitstream, and learns what the caps need from the sequence header.

use std::borrow::Cow;
use std::fmt;

use super::frame::is_shown_key_frame;
use super::obu::{self, Obu, ObuError, Obus, obu_type};
use super::sequence::{SequenceHeader, sized_sequence_header_obu};

/// Why a temporal unit was not passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixError {
    /// An OBU does not parse, or a frame header is empty or too short to read its type.
    Obu(ObuError),
    /// The TU holds nothing but temporal delimiters, padding or tile lists.
    Empty,
    /// The TU cannot be decoded yet: no key frame (with a sequence header) since the start or
    /// since the last error.
    WaitingForKeyframe,
}

impl fmt::Display for FixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixError::Obu(e) => write!(f, "malformed OBU: {e}"),
            FixError::Empty => write!(f, "temporal unit holds no frame data"),
            FixError::WaitingForKeyframe => write!(f, "waiting for a key frame with a sequence header"),
        }
    }
}

impl std::error::Error for FixError {}

/// A temporal unit made container-ready, with what the caller needs to know about it.
#[derive(Debug)]
pub struct FixedTu<'a> {
    /// The TU in container-ready form; borrowed when the input already was.
    pub data: Cow<'a, [u8]>,
    /// The first frame of the TU is a shown key frame (a random access point); false while no sequence
    /// header is known.
    pub keyframe: bool,
    /// The sequence header changed with this TU (or is the first one): caps need an update.
    pub new_sequence: bool,
}

struct StoredSequence {
    header: SequenceHeader,
    payload: Vec<u8>,
    /// The OBU in sized form, as av1C and re-insertion use it.
    obu: Vec<u8>,
}

/// The per-stream state of the normalizer: the last sequence header (re-inserted before key
/// frames that lack one) and whether a key frame has been seen since the start, the last error or
/// [`resync`](Self::resync).
#[derive(Default)]
pub struct TuFixer {
    sequence: Option<StoredSequence>,
    synced: bool,
}

impl TuFixer {
    /// A fixer that knows no sequence header yet and waits for a key frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last sequence header that parsed, if any.
    pub fn sequence_header(&self) -> Option<&SequenceHeader> {
        self.sequence.as_ref().map(|s| &s.header)
    }

    /// The av1C record for the current sequence header.
    pub fn av1c(&self) -> Option<Vec<u8>> {
        self.sequence.as_ref().map(|s| s.header.av1c(&s.obu))
    }

    /// Starts over at the next key frame (after a flush or a dropped TU upstream).
    pub fn resync(&mut self) {
        self.synced = false;
    }

    /// Rewrites one TU as one temporal delimiter, then its OBUs with minimal size fields (padding and
    /// tile lists dropped, oversized sizes clamped); a key frame TU without a sequence header gets the
    /// stored one right after the delimiter. The input is borrowed when it already is in that form. Any error makes
    /// the fixer wait for the next key frame.
    pub fn fix<'a>(&mut self, tu: &'a [u8]) -> Result<FixedTu<'a>, FixError> {
        let result = self.fix_inner(tu);
        if result.is_err() {
            self.synced = false;
        }
        result
    }

    fn fix_inner<'a>(&mut self, tu: &'a [u8]) -> Result<FixedTu<'a>, FixError> {
        let mut canonical = true;
        let mut delimiters = 0;
        let mut first_is_delimiter = false;
        let mut has_sequence_header = false;
        let mut new_sequence = false;
        let mut keyframe = None;
        let mut kept = 0;
        let mut kept_len = 0;

        for (index, obu) in Obus::new(tu, true).enumerate() {
            let obu = obu.map_err(FixError::Obu)?;
            canonical &= obu.is_canonical();
            match obu.header.obu_type() {
                obu_type::TEMPORAL_DELIMITER => {
                    delimiters += 1;
                    first_is_delimiter |= index == 0;
                    // Rewritten as the plain two-byte form unless it already is.
                    canonical &= obu.payload.is_empty() && obu.header.bytes() == &obu::TEMPORAL_DELIMITER[..1];
                    continue;
                }
                obu_type::TILE_LIST | obu_type::PADDING => {
                    canonical = false;
                    continue;
                }
                obu_type::SEQUENCE_HEADER => {
                    has_sequence_header = true;
                    new_sequence |= self.store_sequence(&obu);
                }
                obu_type::FRAME | obu_type::FRAME_HEADER if obu.payload.is_empty() => {
                    return Err(FixError::Obu(ObuError::Truncated));
                }
                obu_type::FRAME | obu_type::FRAME_HEADER if keyframe.is_none() => {
                    if let Some(seq) = &self.sequence {
                        keyframe = Some(
                            is_shown_key_frame(&seq.header, obu.payload).ok_or(FixError::Obu(ObuError::Truncated))?,
                        );
                    }
                }
                _ => {}
            }
            kept += 1;
            kept_len += obu.sized_len();
        }
        if kept == 0 {
            return Err(FixError::Empty);
        }
        let keyframe = keyframe.unwrap_or(false);
        if !self.synced {
            if !keyframe {
                return Err(FixError::WaitingForKeyframe);
            }
            self.synced = true;
        }
        let insert_sequence = keyframe && !has_sequence_header;
        canonical &= delimiters == 1 && first_is_delimiter && !insert_sequence;
        if canonical {
            return Ok(FixedTu { data: Cow::Borrowed(tu), keyframe, new_sequence });
        }

        let sequence_obu: &[u8] = match (&self.sequence, insert_sequence) {
            (Some(seq), true) => &seq.obu,
            _ => &[],
        };
        let mut out = Vec::with_capacity(obu::TEMPORAL_DELIMITER.len() + sequence_obu.len() + kept_len);
        out.extend_from_slice(&obu::TEMPORAL_DELIMITER);
        out.extend_from_slice(sequence_obu);
        for obu in Obus::new(tu, true).flatten() {
            if !obu.header.is_droppable() {
                obu.write_sized(&mut out);
            }
        }
        Ok(FixedTu { data: Cow::Owned(out), keyframe, new_sequence })
    }

    /// Keeps a sequence header; returns whether it differs from the one before.
    fn store_sequence(&mut self, obu: &Obu<'_>) -> bool {
        if self.sequence.as_ref().is_some_and(|s| s.payload == obu.payload) {
            return false;
        }
        let Ok(header) = SequenceHeader::parse(obu.payload) else {
            return false;
        };
        self.sequence = Some(StoredSequence {
            header,
            payload: obu.payload.to_vec(),
            obu: sized_sequence_header_obu(&obu.header, obu.payload),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::av1::testutil::CHROME_SEQ;

    const SIZE: u8 = 0x02;
    const TD: [u8; 2] = obu::TEMPORAL_DELIMITER;
    const SEQ: u8 = obu_type::SEQUENCE_HEADER << 3;
    const FRAME: u8 = obu_type::FRAME << 3;
    const KEY: u8 = 0b0001_0000;
    const INTER: u8 = 0b0011_0000;

    fn sized(header: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![header | SIZE, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    fn key_tu() -> Vec<u8> {
        [TD.to_vec(), sized(SEQ, &CHROME_SEQ), sized(FRAME, &[KEY, 1, 2, 3])].concat()
    }

    fn synced() -> TuFixer {
        let mut fixer = TuFixer::new();
        fixer.fix(&key_tu()).unwrap();
        fixer
    }

    #[test]
    fn canonical_tu_passes_borrowed() {
        let mut fixer = TuFixer::new();
        let tu = key_tu();
        let fixed = fixer.fix(&tu).unwrap();
        assert!(matches!(fixed.data, Cow::Borrowed(_)));
        assert!(fixed.keyframe && fixed.new_sequence);
        let inter = [TD.to_vec(), sized(FRAME, &[INTER, 9])].concat();
        let fixed = fixer.fix(&inter).unwrap();
        assert!(matches!(fixed.data, Cow::Borrowed(_)));
        assert!(!fixed.keyframe && !fixed.new_sequence);
    }

    #[test]
    fn sizes_are_added_and_made_minimal() {
        let mut fixer = synced();
        // No TD, a non-minimal size (2 in two bytes), then a last OBU without size field.
        let tu = [vec![obu_type::METADATA << 3 | SIZE, 0x82, 0x00, 7, 7], vec![FRAME, INTER, 5, 6]].concat();
        let fixed = fixer.fix(&tu).unwrap();
        let expected = [TD.to_vec(), sized(obu_type::METADATA << 3, &[7, 7]), sized(FRAME, &[INTER, 5, 6])].concat();
        assert_eq!(&*fixed.data, &expected[..]);
    }

    #[test]
    fn oversize_last_obu_is_cut_to_the_data() {
        let mut fixer = synced();
        let tu = [TD.to_vec(), vec![FRAME | SIZE, 50, INTER, 1]].concat();
        let fixed = fixer.fix(&tu).unwrap();
        assert_eq!(&*fixed.data, &[TD.to_vec(), sized(FRAME, &[INTER, 1])].concat()[..]);
    }

    #[test]
    fn one_delimiter_and_no_padding_or_tile_lists() {
        let mut fixer = synced();
        let tu = [
            TD.to_vec(),
            TD.to_vec(),
            sized(obu_type::PADDING << 3, &[0, 0]),
            sized(FRAME, &[INTER]),
            sized(obu_type::TILE_LIST << 3, &[1]),
        ]
        .concat();
        let fixed = fixer.fix(&tu).unwrap();
        assert_eq!(&*fixed.data, &[TD.to_vec(), sized(FRAME, &[INTER])].concat()[..]);
        // A delimiter that is not first is moved to the front.
        let tu = [sized(FRAME, &[INTER]), TD.to_vec()].concat();
        assert_eq!(&*fixer.fix(&tu).unwrap().data, &[TD.to_vec(), sized(FRAME, &[INTER])].concat()[..]);
    }

    #[test]
    fn sequence_header_is_reinserted_before_key_frames_lacking_it() {
        let mut fixer = synced();
        let tu = [TD.to_vec(), sized(FRAME, &[KEY, 4])].concat();
        let fixed = fixer.fix(&tu).unwrap();
        assert!(fixed.keyframe);
        assert_eq!(&*fixed.data, &[TD.to_vec(), sized(SEQ, &CHROME_SEQ), sized(FRAME, &[KEY, 4])].concat()[..]);
    }

    #[test]
    fn waits_for_a_key_frame_with_a_sequence_header() {
        let mut fixer = TuFixer::new();
        let inter = [TD.to_vec(), sized(FRAME, &[INTER])].concat();
        assert_eq!(fixer.fix(&inter).unwrap_err(), FixError::WaitingForKeyframe);
        // A key frame without any sequence header seen cannot be told apart yet.
        let bare_key = [TD.to_vec(), sized(FRAME, &[KEY])].concat();
        assert_eq!(fixer.fix(&bare_key).unwrap_err(), FixError::WaitingForKeyframe);
        assert!(fixer.fix(&key_tu()).unwrap().keyframe);
        assert!(fixer.fix(&inter).is_ok());
        // After a malformed TU the next delta frame is not pushed.
        assert!(matches!(fixer.fix(&[0x80]), Err(FixError::Obu(ObuError::ForbiddenBit))));
        assert_eq!(fixer.fix(&inter).unwrap_err(), FixError::WaitingForKeyframe);
        assert!(fixer.fix(&bare_key).is_ok());
    }

    #[test]
    fn odd_delimiters_are_rewritten_plain() {
        // Found by fuzzing: a TD with an extension header, and one with the reserved bit set.
        let mut fixer = synced();
        let with_extension = [TD[0] | 0x04, 0x00, 0x00];
        let reserved_bit = [TD[0] | 0x01, 0x00];
        for td in [&with_extension[..], &reserved_bit[..]] {
            let tu = [td, &sized(FRAME, &[INTER])[..]].concat();
            assert_eq!(&*fixer.fix(&tu).unwrap().data, &[TD.to_vec(), sized(FRAME, &[INTER])].concat()[..]);
        }
    }

    #[test]
    fn frame_obu_without_payload_is_malformed_whatever_the_state() {
        // Found by fuzzing: before any sequence header this was accepted, after it rejected.
        let mut fixer = TuFixer::new();
        assert_eq!(fixer.fix(&[FRAME | SIZE, 0]).unwrap_err(), FixError::Obu(ObuError::Truncated));
        let mut fixer = synced();
        assert_eq!(fixer.fix(&[FRAME | SIZE, 0]).unwrap_err(), FixError::Obu(ObuError::Truncated));
    }

    #[test]
    fn empty_tus_are_errors() {
        let mut fixer = synced();
        assert_eq!(fixer.fix(&TD).unwrap_err(), FixError::Empty);
        assert_eq!(fixer.fix(&sized(obu_type::PADDING << 3, &[1])).unwrap_err(), FixError::Empty);
    }

    #[test]
    fn new_sequence_header_is_reported_and_gives_new_av1c() {
        let mut fixer = synced();
        let before = fixer.av1c().unwrap();
        let timed = crate::av1::testutil::seq_with_timing();
        let tu = [TD.to_vec(), sized(SEQ, &timed), sized(FRAME, &[KEY])].concat();
        let fixed = fixer.fix(&tu).unwrap();
        assert!(fixed.new_sequence);
        assert_ne!(fixer.av1c().unwrap(), before);
        assert_eq!(fixer.sequence_header().unwrap().max_frame_width, 640);
    }
}
