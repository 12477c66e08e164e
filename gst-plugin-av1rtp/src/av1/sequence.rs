//! The sequence header OBU (AV1 spec 5.5) and the av1C record built from it
//! (AV1 Codec ISO Media File Format Binding, 2.3).

use super::bits::{BitReader, OutOfBits};
use super::obu::ObuHeader;

/// `timing_info()` of the sequence header (spec 5.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingInfo {
    /// Time units of a `time_scale` clock per display tick.
    pub num_units_in_display_tick: u32,
    /// Time units per second.
    pub time_scale: u32,
    /// `num_ticks_per_picture_minus_1 + 1` when `equal_picture_interval` is set.
    pub ticks_per_picture: Option<u64>,
}

impl TimingInfo {
    /// The frame rate as a fraction, when the stream promises a constant one.
    pub fn framerate(&self) -> Option<(u64, u64)> {
        let ticks = self.ticks_per_picture?;
        let den = u64::from(self.num_units_in_display_tick) * ticks;
        (self.time_scale > 0 && den > 0).then_some((u64::from(self.time_scale), den))
    }
}

/// The fields of a sequence header that caps and av1C need; the rest is skipped while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceHeader {
    /// `seq_profile` (0 main, 1 high, 2 professional; 3 bits).
    pub profile: u8,
    /// `still_picture`: the stream holds one picture.
    pub still_picture: bool,
    /// `reduced_still_picture_header`: a still picture with a minimal header; every frame is a key frame.
    pub reduced_still_picture_header: bool,
    /// `timing_info()`, when `timing_info_present_flag` is set.
    pub timing_info: Option<TimingInfo>,
    /// `seq_level_idx[0]`, the level of operating point 0 (5 bits; 31 means no level restriction).
    pub level_idx0: u8,
    /// `seq_tier[0]`: high tier for operating point 0 (only read for levels above 3.3, else false).
    pub tier0: bool,
    /// `initial_display_delay_minus_1[0]` (4 bits), when present for operating point 0.
    pub initial_display_delay_minus_1_op0: Option<u8>,
    /// `max_frame_width_minus_1 + 1`, in pixels.
    pub max_frame_width: u32,
    /// `max_frame_height_minus_1 + 1`, in pixels.
    pub max_frame_height: u32,
    /// Bits per sample: 8, 10 or 12 (`BitDepth` from `color_config()`).
    pub bit_depth: u8,
    /// `mono_chrome`: luma only.
    pub mono_chrome: bool,
    /// `subsampling_x`: chroma has half the luma width.
    pub subsampling_x: bool,
    /// `subsampling_y`: chroma has half the luma height.
    pub subsampling_y: bool,
    /// `chroma_sample_position` (2 bits: 0 unknown, 1 vertical, 2 colocated); read only for 4:2:0, else 0.
    pub chroma_sample_position: u8,
    /// `color_primaries` (ISO/IEC 23091-4 code points); 2 (unspecified) without a color description.
    pub color_primaries: u8,
    /// `transfer_characteristics`; 2 (unspecified) without a color description.
    pub transfer_characteristics: u8,
    /// `matrix_coefficients`; 2 (unspecified) without a color description.
    pub matrix_coefficients: u8,
    /// `color_range`: full-range samples rather than studio (limited) range.
    pub full_range: bool,
}

impl SequenceHeader {
    /// Parses the payload of a sequence header OBU (without OBU header and size).
    pub fn parse(payload: &[u8]) -> Result<Self, OutOfBits> {
        let mut r = BitReader::new(payload);
        let profile = r.bits(3)? as u8;
        let still_picture = r.bit()?;
        let reduced_still_picture_header = r.bit()?;
        let mut timing_info = None;
        let level_idx0;
        let mut tier0 = false;
        let mut initial_display_delay_minus_1_op0 = None;
        if reduced_still_picture_header {
            level_idx0 = r.bits(5)? as u8;
        } else {
            let mut decoder_model_info_present = false;
            let mut buffer_delay_length = 0;
            if r.bit()? {
                let num_units_in_display_tick = r.bits(32)?;
                let time_scale = r.bits(32)?;
                let ticks_per_picture = if r.bit()? { Some(u64::from(r.uvlc()?) + 1) } else { None };
                timing_info = Some(TimingInfo { num_units_in_display_tick, time_scale, ticks_per_picture });
                decoder_model_info_present = r.bit()?;
                if decoder_model_info_present {
                    buffer_delay_length = r.bits(5)? as usize + 1;
                    r.skip(32 + 5 + 5)?;
                }
            }
            let initial_display_delay_present = r.bit()?;
            let operating_points = r.bits(5)? + 1;
            let mut first_level = None;
            for i in 0..operating_points {
                r.skip(12)?; // operating_point_idc
                let level = r.bits(5)? as u8;
                let tier = level > 7 && r.bit()?;
                if decoder_model_info_present && r.bit()? {
                    r.skip(2 * buffer_delay_length + 1)?;
                }
                let mut delay = None;
                if initial_display_delay_present && r.bit()? {
                    delay = Some(r.bits(4)? as u8);
                }
                if i == 0 {
                    first_level = Some(level);
                    tier0 = tier;
                    initial_display_delay_minus_1_op0 = delay;
                }
            }
            level_idx0 = first_level.unwrap_or(0);
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        let max_frame_width = r.bits(width_bits)? + 1;
        let max_frame_height = r.bits(height_bits)? + 1;
        if !reduced_still_picture_header && r.bit()? {
            r.skip(4 + 3)?; // frame id lengths
        }
        r.skip(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if !reduced_still_picture_header {
            r.skip(4)?; // interintra, masked compound, warped motion, dual filter
            let enable_order_hint = r.bit()?;
            if enable_order_hint {
                r.skip(2)?;
            }
            let force_screen_content_tools = if r.bit()? { 2 } else { r.bits(1)? };
            if force_screen_content_tools > 0 && !r.bit()? {
                r.skip(1)?; // seq_force_integer_mv
            }
            if enable_order_hint {
                r.skip(3)?;
            }
        }
        r.skip(3)?; // superres, cdef, restoration

        // color_config()
        let high_bitdepth = r.bit()?;
        let bit_depth = if profile == 2 && high_bitdepth {
            if r.bit()? { 12 } else { 10 }
        } else if high_bitdepth {
            10
        } else {
            8
        };
        let mono_chrome = profile != 1 && r.bit()?;
        let (color_primaries, transfer_characteristics, matrix_coefficients) =
            if r.bit()? { (r.bits(8)? as u8, r.bits(8)? as u8, r.bits(8)? as u8) } else { (2, 2, 2) };
        let (full_range, subsampling_x, subsampling_y, mut chroma_sample_position);
        chroma_sample_position = 0;
        if mono_chrome {
            full_range = r.bit()?;
            (subsampling_x, subsampling_y) = (true, true);
        } else if (color_primaries, transfer_characteristics, matrix_coefficients) == (1, 13, 0) {
            full_range = true;
            (subsampling_x, subsampling_y) = (false, false);
        } else {
            full_range = r.bit()?;
            (subsampling_x, subsampling_y) = match profile {
                0 => (true, true),
                1 => (false, false),
                _ if bit_depth == 12 => {
                    let x = r.bit()?;
                    (x, x && r.bit()?)
                }
                _ => (true, false),
            };
            if subsampling_x && subsampling_y {
                chroma_sample_position = r.bits(2)? as u8;
            }
        }
        Ok(Self {
            profile,
            still_picture,
            reduced_still_picture_header,
            timing_info,
            level_idx0,
            tier0,
            initial_display_delay_minus_1_op0,
            max_frame_width,
            max_frame_height,
            bit_depth,
            mono_chrome,
            subsampling_x,
            subsampling_y,
            chroma_sample_position,
            color_primaries,
            transfer_characteristics,
            matrix_coefficients,
            full_range,
        })
    }

    /// GStreamer's profile name (as av1parse writes it).
    pub fn profile_name(&self) -> &'static str {
        match self.profile {
            0 => "main",
            1 => "high",
            _ => "professional",
        }
    }

    /// GStreamer's chroma-format name.
    pub fn chroma_format(&self) -> &'static str {
        match (self.mono_chrome, self.subsampling_x, self.subsampling_y) {
            (true, _, _) => "4:0:0",
            (false, true, true) => "4:2:0",
            (false, true, false) => "4:2:2",
            _ => "4:4:4",
        }
    }

    /// The av1C record: 4 bytes of configuration and then `config_obus` (the sequence header
    /// OBU in its sized form, as the binding requires).
    pub fn av1c(&self, config_obus: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + config_obus.len());
        out.push(0x81); // marker, version 1
        out.push(self.profile << 5 | (self.level_idx0 & 0x1f));
        out.push(
            u8::from(self.tier0) << 7
                | u8::from(self.bit_depth > 8) << 6
                | u8::from(self.bit_depth == 12) << 5
                | u8::from(self.mono_chrome) << 4
                | u8::from(self.subsampling_x) << 3
                | u8::from(self.subsampling_y) << 2
                | self.chroma_sample_position,
        );
        out.push(match self.initial_display_delay_minus_1_op0 {
            Some(delay) => 0x10 | (delay & 0x0f),
            None => 0,
        });
        out.extend_from_slice(config_obus);
        out
    }
}

/// Writes a sequence header OBU in sized form (what av1C and the bitstream carry).
pub fn sized_sequence_header_obu(header: &ObuHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.sized_len(payload.len()) + payload.len());
    header.write_sized(payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::av1::testutil::{CHROME_SEQ, seq_with_timing};

    #[test]
    fn parses_chromium_sequence_header() {
        let seq = SequenceHeader::parse(&CHROME_SEQ).unwrap();
        assert_eq!((seq.max_frame_width, seq.max_frame_height), (1280, 720));
        assert_eq!((seq.profile, seq.bit_depth, seq.chroma_format()), (0, 8, "4:2:0"));
        assert_eq!(seq.timing_info, None);
        assert_eq!(seq.level_idx0, 5); // level 3.1
    }

    #[test]
    fn parses_timing_info() {
        let seq = SequenceHeader::parse(&seq_with_timing()).unwrap();
        assert_eq!((seq.max_frame_width, seq.max_frame_height), (640, 360));
        assert_eq!(seq.timing_info.unwrap().framerate(), Some((30, 1)));
        assert_eq!(seq.level_idx0, 8);
    }

    #[test]
    fn av1c_record() {
        let seq = SequenceHeader::parse(&CHROME_SEQ).unwrap();
        let obu = sized_sequence_header_obu(&ObuHeader::parse(&[0x08]).unwrap(), &CHROME_SEQ);
        let av1c = seq.av1c(&obu);
        // profile 0 level 5; 4:2:0 (subsampling x and y); no initial delay.
        assert_eq!(&av1c[..4], &[0x81, 0x05, 0x0c, 0x00]);
        assert_eq!(&av1c[4..6], &[0x0a, 11]);
        assert_eq!(&av1c[6..], &CHROME_SEQ);
    }

    #[test]
    fn truncated_headers_fail_cleanly() {
        for len in 0..CHROME_SEQ.len() - 1 {
            assert!(SequenceHeader::parse(&CHROME_SEQ[..len]).is_err(), "len {len}");
        }
    }
}
