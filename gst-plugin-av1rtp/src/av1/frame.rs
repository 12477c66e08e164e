//! The start of the uncompressed frame header (AV1 spec 5.9.2): enough to tell key frames.

use super::bits::BitReader;
use super::sequence::SequenceHeader;

const KEY_FRAME: u32 = 0;

/// Whether a frame header (the payload of an OBU_FRAME or OBU_FRAME_HEADER) starts a shown key
/// frame, a random access point. `None` when the header is too short to tell.
pub fn is_shown_key_frame(seq: &SequenceHeader, frame_header: &[u8]) -> Option<bool> {
    if seq.reduced_still_picture_header {
        return Some(true);
    }
    let mut r = BitReader::new(frame_header);
    let show_existing_frame = r.bit().ok()?;
    if show_existing_frame {
        return Some(false);
    }
    let frame_type = r.bits(2).ok()?;
    let show_frame = r.bit().ok()?;
    Some(frame_type == KEY_FRAME && show_frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::av1::testutil::CHROME_SEQ;

    #[test]
    fn frame_types() {
        let seq = SequenceHeader::parse(&CHROME_SEQ).unwrap();
        // show_existing_frame=0, frame_type=KEY(00), show_frame=1
        assert_eq!(is_shown_key_frame(&seq, &[0b0001_0000]), Some(true));
        // hidden key frame
        assert_eq!(is_shown_key_frame(&seq, &[0b0000_0000]), Some(false));
        // inter frame (01), shown
        assert_eq!(is_shown_key_frame(&seq, &[0b0011_0000]), Some(false));
        // show_existing_frame
        assert_eq!(is_shown_key_frame(&seq, &[0b1000_0000]), Some(false));
        assert_eq!(is_shown_key_frame(&seq, &[]), None);
    }
}
