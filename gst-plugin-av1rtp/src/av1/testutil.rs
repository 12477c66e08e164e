//! Helpers for building bitstreams in tests.

#[derive(Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    bit: u32,
}

impl BitWriter {
    /// Appends the low `n` bits of `value`, most significant first.
    pub fn put(&mut self, value: u64, n: u32) {
        for i in (0..n).rev() {
            if self.bit.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let b = ((value >> i) & 1) as u8;
            *self.bytes.last_mut().unwrap() |= b << (7 - self.bit % 8);
            self.bit += 1;
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}
