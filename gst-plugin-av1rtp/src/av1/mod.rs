//! AV1 bitstream pieces (sans-IO): leb128, OBUs, sequence and frame headers, and the
//! temporal-unit normalizer behind `av1obufix`.

pub mod bits;
pub mod fixer;
pub mod frame;
pub mod leb128;
pub mod obu;
pub mod sequence;
#[cfg(test)]
pub(crate) mod testutil;
