//! RTP (sans-IO): the fixed header and the AV1 depacketizer behind `rtpav1depay-rs`.

pub mod av1;
pub mod packet;
