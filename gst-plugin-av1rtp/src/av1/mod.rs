//! AV1 bitstream pieces (sans-IO): leb128, OBUs, sequence and frame headers, the temporal-unit
//! normalizer behind `av1obufix`, and the SVC layer filter behind rtpav1depay-rs's limits.

pub mod bits;
pub mod fixer;
pub mod frame;
pub mod layers;
pub mod leb128;
pub mod obu;
pub mod sequence;
#[cfg(test)]
pub(crate) mod testutil;
