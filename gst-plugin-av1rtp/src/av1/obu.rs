//! OBU headers and the low-overhead bitstream format (AV1 spec 5.3, 7.5).

use super::leb128;
use std::fmt;

/// OBU types (spec 6.2.2). Values 0, 9..=14 are reserved.
pub mod obu_type {
    /// `OBU_SEQUENCE_HEADER`: the sequence header (spec 5.5).
    pub const SEQUENCE_HEADER: u8 = 1;
    /// `OBU_TEMPORAL_DELIMITER`: starts a temporal unit; has an empty payload.
    pub const TEMPORAL_DELIMITER: u8 = 2;
    /// `OBU_FRAME_HEADER`: a frame header without tile data (that follows in tile groups, if any).
    pub const FRAME_HEADER: u8 = 3;
    /// `OBU_TILE_GROUP`: tile data for the preceding frame header.
    pub const TILE_GROUP: u8 = 4;
    /// `OBU_METADATA`: metadata such as HDR info or timecodes (spec 5.8).
    pub const METADATA: u8 = 5;
    /// `OBU_FRAME`: a frame header and its first tile group in one OBU.
    pub const FRAME: u8 = 6;
    /// `OBU_REDUNDANT_FRAME_HEADER`: a copy of the frame header, for loss resilience.
    pub const REDUNDANT_FRAME_HEADER: u8 = 7;
    /// `OBU_TILE_LIST`: large-scale tile decoding only; not part of a normal stream.
    pub const TILE_LIST: u8 = 8;
    /// `OBU_PADDING`: padding bytes that decoders ignore.
    pub const PADDING: u8 = 15;
}

const HAS_EXTENSION: u8 = 0x04;
const HAS_SIZE_FIELD: u8 = 0x02;

/// A temporal delimiter OBU with its (empty) size field.
pub const TEMPORAL_DELIMITER: [u8; 2] = [obu_type::TEMPORAL_DELIMITER << 3 | HAS_SIZE_FIELD, 0];

/// Why an OBU could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObuError {
    /// The data ends inside the OBU header or its size field.
    Truncated,
    /// The forbidden bit is set.
    ForbiddenBit,
    /// The size field is not valid leb128.
    BadSize,
    /// The size field says more bytes than there are.
    SizeTooLarge {
        /// The payload size in the size field, in bytes.
        declared: u64,
        /// The bytes left after the size field.
        available: usize,
    },
}

impl fmt::Display for ObuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObuError::Truncated => write!(f, "OBU header truncated"),
            ObuError::ForbiddenBit => write!(f, "OBU forbidden bit set"),
            ObuError::BadSize => write!(f, "OBU size field is not valid leb128"),
            ObuError::SizeTooLarge { declared, available } => {
                write!(f, "OBU size {declared} exceeds the {available} bytes left")
            }
        }
    }
}

impl std::error::Error for ObuError {}

/// The one- or two-byte OBU header, kept as bytes so that extension headers survive as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObuHeader {
    bytes: [u8; 2],
}

impl ObuHeader {
    /// Parses the header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self, ObuError> {
        let first = *data.first().ok_or(ObuError::Truncated)?;
        if first & 0x80 != 0 {
            return Err(ObuError::ForbiddenBit);
        }
        let second = if first & HAS_EXTENSION != 0 { *data.get(1).ok_or(ObuError::Truncated)? } else { 0 };
        Ok(Self { bytes: [first, second] })
    }

    /// `obu_type`, one of the [`obu_type`] constants (4 bits).
    pub fn obu_type(&self) -> u8 {
        (self.bytes[0] >> 3) & 0x0f
    }

    /// `obu_extension_flag`: whether a second header byte with temporal and spatial ids follows.
    pub fn has_extension(&self) -> bool {
        self.bytes[0] & HAS_EXTENSION != 0
    }

    /// `obu_has_size_field`: whether a leb128 payload size follows the header.
    pub fn has_size_field(&self) -> bool {
        self.bytes[0] & HAS_SIZE_FIELD != 0
    }

    /// `temporal_id` (0..=7) from the extension header; 0 without one.
    pub fn temporal_id(&self) -> u8 {
        if self.has_extension() { self.bytes[1] >> 5 } else { 0 }
    }

    /// `spatial_id` (0..=3) from the extension header; 0 without one.
    pub fn spatial_id(&self) -> u8 {
        if self.has_extension() { (self.bytes[1] >> 3) & 0x03 } else { 0 }
    }

    /// The header as it was read: one byte, or two with an extension header.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.byte_len()]
    }

    /// 1, or 2 with an extension header.
    pub fn byte_len(&self) -> usize {
        1 + usize::from(self.has_extension())
    }

    /// Whether the OBU is one that a container-ready stream leaves out or carries once per TU
    /// (temporal delimiters are re-inserted, tile lists and padding are dropped).
    pub fn is_droppable(&self) -> bool {
        matches!(self.obu_type(), obu_type::TEMPORAL_DELIMITER | obu_type::TILE_LIST | obu_type::PADDING)
    }

    /// Appends the header with `obu_has_size_field = 1` and the minimal leb128 size of a payload
    /// of `payload_len` bytes.
    pub fn write_sized(&self, payload_len: usize, out: &mut Vec<u8>) {
        out.push(self.bytes[0] | HAS_SIZE_FIELD);
        if self.has_extension() {
            out.push(self.bytes[1]);
        }
        leb128::write(payload_len as u64, out);
    }

    /// The number of bytes `write_sized` appends.
    pub fn sized_len(&self, payload_len: usize) -> usize {
        self.byte_len() + leb128::encoded_len(payload_len as u64)
    }
}

/// How an OBU's size was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeField {
    /// `obu_has_size_field = 0`: the OBU runs to the end of the data.
    Absent,
    /// A size field in its shortest encoding.
    Minimal,
    /// A correct size field in a longer encoding than needed.
    NonMinimal,
    /// A size field larger than the data left; the OBU was cut to the end of the data.
    Clamped,
}

/// One OBU in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    /// The OBU header as read.
    pub header: ObuHeader,
    /// The payload, without header and size field.
    pub payload: &'a [u8],
    /// How the size was given in the input.
    pub size_field: SizeField,
}

impl Obu<'_> {
    /// Whether the OBU is already in container-ready form (minimal size field).
    pub fn is_canonical(&self) -> bool {
        self.size_field == SizeField::Minimal
    }

    /// Appends the OBU in container-ready form.
    pub fn write_sized(&self, out: &mut Vec<u8>) {
        self.header.write_sized(self.payload.len(), out);
        out.extend_from_slice(self.payload);
    }

    /// The number of bytes `write_sized` appends.
    pub fn sized_len(&self) -> usize {
        self.header.sized_len(self.payload.len()) + self.payload.len()
    }
}

/// Parses the OBU at the start of `data` and returns it with the number of bytes it used.
/// With `clamp_oversize`, a size field larger than what is left is taken to mean "to the end".
pub fn parse_obu(data: &[u8], clamp_oversize: bool) -> Result<(Obu<'_>, usize), ObuError> {
    let header = ObuHeader::parse(data)?;
    let mut pos = header.byte_len();
    if !header.has_size_field() {
        let obu = Obu { header, payload: &data[pos..], size_field: SizeField::Absent };
        return Ok((obu, data.len()));
    }
    let (size, size_len) =
        leb128::read(&data[pos..]).ok_or(if data.len() - pos < 8 { ObuError::Truncated } else { ObuError::BadSize })?;
    pos += size_len;
    let available = data.len() - pos;
    if size > available as u64 {
        if !clamp_oversize {
            return Err(ObuError::SizeTooLarge { declared: size, available });
        }
        let obu = Obu { header, payload: &data[pos..], size_field: SizeField::Clamped };
        return Ok((obu, data.len()));
    }
    let size = size as usize;
    let size_field =
        if size_len == leb128::encoded_len(size as u64) { SizeField::Minimal } else { SizeField::NonMinimal };
    Ok((Obu { header, payload: &data[pos..pos + size], size_field }, pos + size))
}

/// Iterates over the OBUs of a temporal unit in low-overhead format.
pub struct Obus<'a> {
    data: &'a [u8],
    clamp_oversize: bool,
}

impl<'a> Obus<'a> {
    /// Iterates over `data`; `clamp_oversize` as in [`parse_obu`]. After an error the iterator ends.
    pub fn new(data: &'a [u8], clamp_oversize: bool) -> Self {
        Self { data, clamp_oversize }
    }
}

impl<'a> Iterator for Obus<'a> {
    type Item = Result<Obu<'a>, ObuError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match parse_obu(self.data, self.clamp_oversize) {
            Ok((obu, used)) => {
                self.data = &self.data[used..];
                Some(Ok(obu))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        // FRAME with extension: temporal_id 2, spatial_id 1.
        #[allow(clippy::unusual_byte_groupings)] // grouped by field: temporal id, spatial id, reserved
        let h = ObuHeader::parse(&[obu_type::FRAME << 3 | HAS_EXTENSION, 0b010_01_000]).unwrap();
        assert_eq!(h.obu_type(), obu_type::FRAME);
        assert!(h.has_extension());
        assert!(!h.has_size_field());
        assert_eq!((h.temporal_id(), h.spatial_id()), (2, 1));
        assert_eq!(h.byte_len(), 2);
        assert_eq!(ObuHeader::parse(&[0x80]), Err(ObuError::ForbiddenBit));
        assert_eq!(ObuHeader::parse(&[HAS_EXTENSION]), Err(ObuError::Truncated));
    }

    #[test]
    fn write_sized_keeps_extension_and_sets_size_flag() {
        let h = ObuHeader::parse(&[obu_type::FRAME << 3 | HAS_EXTENSION, 0x48]).unwrap();
        let mut out = Vec::new();
        h.write_sized(200, &mut out);
        assert_eq!(out, [obu_type::FRAME << 3 | HAS_EXTENSION | HAS_SIZE_FIELD, 0x48, 0xc8, 0x01]);
        assert_eq!(h.sized_len(200), out.len());
    }

    #[test]
    fn parses_sized_unsized_non_minimal_and_oversize() {
        let sized = [obu_type::FRAME << 3 | HAS_SIZE_FIELD, 2, 0xaa, 0xbb, 0xcc];
        let (obu, used) = parse_obu(&sized, false).unwrap();
        assert_eq!((obu.payload, used, obu.size_field), (&[0xaa, 0xbb][..], 4, SizeField::Minimal));

        let unsized_ = [obu_type::FRAME << 3, 0xaa, 0xbb];
        let (obu, used) = parse_obu(&unsized_, false).unwrap();
        assert_eq!((obu.payload, used, obu.size_field), (&[0xaa, 0xbb][..], 3, SizeField::Absent));

        let padded = [obu_type::FRAME << 3 | HAS_SIZE_FIELD, 0x81, 0x80, 0x00, 0xaa];
        let (obu, _) = parse_obu(&padded, false).unwrap();
        assert_eq!((obu.payload, obu.size_field), (&[0xaa][..], SizeField::NonMinimal));

        let oversize = [obu_type::FRAME << 3 | HAS_SIZE_FIELD, 9, 0xaa];
        assert_eq!(parse_obu(&oversize, false), Err(ObuError::SizeTooLarge { declared: 9, available: 1 }));
        let (obu, _) = parse_obu(&oversize, true).unwrap();
        assert_eq!((obu.payload, obu.size_field), (&[0xaa][..], SizeField::Clamped));
    }

    #[test]
    fn zero_length_obus() {
        let data = [TEMPORAL_DELIMITER[0], 0, obu_type::PADDING << 3 | HAS_SIZE_FIELD, 0];
        let obus: Vec<_> = Obus::new(&data, false).collect::<Result<_, _>>().unwrap();
        assert_eq!(obus.len(), 2);
        assert!(obus.iter().all(|o| o.payload.is_empty() && o.is_canonical()));
    }
}
