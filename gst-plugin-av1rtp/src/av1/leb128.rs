//! leb128 as AV1 uses it (spec 4.10.5): little-endian base-128, at most 8 bytes, value < 2^32.

/// The largest value an AV1 `leb128()` may carry.
pub const MAX_VALUE: u64 = (1 << 32) - 1;

/// Reads one leb128 value. Returns the value and the number of bytes it used, or `None` when
/// the input ends inside the value, uses more than 8 bytes or exceeds 2^32 - 1.
pub fn read(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value <= MAX_VALUE).then_some((value, i + 1));
        }
    }
    None
}

/// The number of bytes the minimal encoding of `value` takes.
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Appends the minimal encoding of `value`.
pub fn write(value: u64, out: &mut Vec<u8>) {
    let mut v = value;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_minimal_length() {
        for value in [0u64, 1, 127, 128, 300, 16383, 16384, 1 << 21, MAX_VALUE] {
            let mut out = Vec::new();
            write(value, &mut out);
            assert_eq!(out.len(), encoded_len(value), "value {value}");
            assert_eq!(read(&out), Some((value, out.len())));
        }
    }

    #[test]
    fn two_byte_values() {
        assert_eq!(read(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(read(&[0xff, 0x7f]), Some((16383, 2)));
        let mut out = Vec::new();
        write(1200, &mut out);
        assert_eq!(out, [0xb0, 0x09]);
    }

    #[test]
    fn non_minimal_encodings_are_read() {
        // 5 encoded in 3 bytes (padding continuation bytes) is legal AV1.
        assert_eq!(read(&[0x85, 0x80, 0x00]), Some((5, 3)));
    }

    #[test]
    fn truncated_overlong_and_too_large_are_rejected() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[0x80]), None);
        assert_eq!(read(&[0x80; 9]), None);
        // 2^32 needs 5 bytes: 0x80 0x80 0x80 0x80 0x10.
        assert_eq!(read(&[0x80, 0x80, 0x80, 0x80, 0x10]), None);
    }
}
