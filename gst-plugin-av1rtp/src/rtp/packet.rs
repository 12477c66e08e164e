//! RTP fixed header parsing (RFC 3550, 5.1): enough to find the payload of a packet.

use std::fmt;
use std::ops::Range;

/// The fields of an RTP packet's fixed header that a depacketizer needs, and where its payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpHeader {
    /// The M bit; for AV1 it marks the last packet of a temporal unit.
    pub marker: bool,
    /// PT, 7 bits.
    pub payload_type: u8,
    /// Sequence number, one more per packet sent (wrapping at 2^16).
    pub sequence_number: u16,
    /// Sampling instant in the clock rate of the payload format (90 kHz for AV1).
    pub timestamp: u32,
    /// Synchronization source identifier.
    pub ssrc: u32,
    /// Where the payload lies in the packet (after CSRCs and extension, before padding).
    pub payload: Range<usize>,
}

/// Why a packet is not a valid RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// The packet (of this many bytes) is shorter than the 12-byte fixed header.
    TooShort(usize),
    /// The version field is this, not 2.
    Version(u8),
    /// CSRC list or header extension runs past the end.
    HeaderOverrun,
    /// The padding count is zero or larger than the payload.
    BadPadding,
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::TooShort(n) => write!(f, "RTP packet of {n} bytes is shorter than 12"),
            RtpError::Version(v) => write!(f, "RTP version {v}, expected 2"),
            RtpError::HeaderOverrun => write!(f, "RTP CSRC list or header extension overruns the packet"),
            RtpError::BadPadding => write!(f, "RTP padding count is invalid"),
        }
    }
}

impl std::error::Error for RtpError {}

impl RtpHeader {
    /// Parses the fixed header of the packet `data`, skipping CSRCs and a header extension and
    /// leaving padding out of the payload range.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::TooShort(data.len()));
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = data[0] & 0x20 != 0;
        let has_extension = data[0] & 0x10 != 0;
        let csrc_count = usize::from(data[0] & 0x0f);
        let mut start = 12 + 4 * csrc_count;
        if has_extension {
            let words = data.get(start + 2..start + 4).ok_or(RtpError::HeaderOverrun)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        if start > data.len() {
            return Err(RtpError::HeaderOverrun);
        }
        let mut end = data.len();
        if has_padding {
            let count = usize::from(data[end - 1]);
            if count == 0 || count > end - start {
                return Err(RtpError::BadPadding);
            }
            end -= count;
        }
        Ok(Self {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            sequence_number: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: start..end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_extension_csrc_and_padding() {
        let mut p = vec![0x80 | 0x20 | 0x10 | 0x01, 0x80 | 45, 0x12, 0x34, 0, 0, 0x10, 0, 1, 2, 3, 4];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]); // one-byte extension, 1 word
        p.extend_from_slice(&[0xaa, 0xbb]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!((h.payload_type, h.sequence_number, h.timestamp), (45, 0x1234, 0x1000));
        assert_eq!(h.ssrc, 0x01020304);
        assert_eq!(&p[h.payload], &[0xaa, 0xbb]);
    }

    #[test]
    fn padding_only_packet_has_empty_payload() {
        let mut p = vec![0xa0, 45, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        p.extend_from_slice(&[0; 199]);
        p.push(200);
        assert!(RtpHeader::parse(&p).unwrap().payload.is_empty());
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpHeader::parse(&[0x80; 5]), Err(RtpError::TooShort(5)));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        let ext_overrun = [0x90, 45, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9];
        assert_eq!(RtpHeader::parse(&ext_overrun), Err(RtpError::HeaderOverrun));
        let bad_pad = [0xa0, 45, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa, 0];
        assert_eq!(RtpHeader::parse(&bad_pad), Err(RtpError::BadPadding));
    }
}
