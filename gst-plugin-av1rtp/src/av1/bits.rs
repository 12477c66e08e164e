//! A big-endian bit reader for AV1 headers (spec 4.10: f(n), uvlc, su, ns).

/// The error of every read: the data ended before the requested bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBits;

/// Reads bits most significant first from a byte slice, tracking the position in bits.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Reads one bit (f(1)).
    pub fn bit(&mut self) -> Result<bool, OutOfBits> {
        let byte = *self.data.get(self.pos / 8).ok_or(OutOfBits)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// f(n) for n <= 32.
    pub fn bits(&mut self, n: u32) -> Result<u32, OutOfBits> {
        debug_assert!(n <= 32);
        let mut value = 0u32;
        for _ in 0..n {
            value = (value << 1) | u32::from(self.bit()?);
        }
        Ok(value)
    }

    /// uvlc(): an Exp-Golomb-like code; values that do not fit in 32 bits saturate as the spec says.
    pub fn uvlc(&mut self) -> Result<u32, OutOfBits> {
        let mut leading_zeros = 0u32;
        while !self.bit()? {
            leading_zeros += 1;
        }
        if leading_zeros >= 32 {
            return Ok(u32::MAX);
        }
        Ok(self.bits(leading_zeros)? + ((1u32 << leading_zeros) - 1))
    }

    /// Skips `n` bits; fails without moving if fewer than `n` are left.
    pub fn skip(&mut self, n: usize) -> Result<(), OutOfBits> {
        let end = self.pos + n;
        if end > self.data.len() * 8 {
            return Err(OutOfBits);
        }
        self.pos = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bits_msb_first() {
        let mut r = BitReader::new(&[0b1010_0000, 0xff]);
        assert_eq!(r.bits(3), Ok(0b101));
        assert_eq!(r.bits(5), Ok(0));
        assert_eq!(r.bits(8), Ok(0xff));
        assert_eq!(r.bit(), Err(OutOfBits));
    }

    #[test]
    fn uvlc_values() {
        // 1 -> 0; 010 -> 1; 011 -> 2; 00100 -> 3
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!(r.uvlc(), Ok(0));
        assert_eq!(r.uvlc(), Ok(1));
        assert_eq!(r.uvlc(), Ok(2));
        assert_eq!(r.uvlc(), Ok(3));
    }
}
