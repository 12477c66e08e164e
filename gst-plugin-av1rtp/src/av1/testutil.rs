//! What the crate's unit tests share: a bit writer for building bitstreams and sequence headers.

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

/// The sequence header of the Chromium capture (libaom, 1280x720, profile 0, 8 bit 4:2:0,
/// no timing info): the payload of its OBU_SEQUENCE_HEADER.
pub const CHROME_SEQ: [u8; 11] = [0x00, 0x00, 0x00, 0x2d, 0x4c, 0xff, 0xb3, 0xc0, 0x1a, 0x00, 0x80];

/// A sequence header with timing info: 30 fps (time_scale 30, 1 tick, equal interval).
pub fn seq_with_timing() -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0, 3); // profile
    w.put(0, 1); // still_picture
    w.put(0, 1); // reduced_still_picture_header
    w.put(1, 1); // timing_info_present
    w.put(1, 32); // num_units_in_display_tick
    w.put(30, 32); // time_scale
    w.put(1, 1); // equal_picture_interval
    w.put(1, 1); // uvlc 0 => ticks_per_picture 1
    w.put(0, 1); // decoder_model_info_present
    w.put(0, 1); // initial_display_delay_present
    w.put(0, 5); // operating_points_cnt_minus_1
    w.put(0, 12); // operating_point_idc
    w.put(8, 5); // seq_level_idx (4.0)
    w.put(0, 1); // seq_tier
    w.put(9, 4); // frame_width_bits_minus_1
    w.put(9, 4); // frame_height_bits_minus_1
    w.put(639, 10);
    w.put(359, 10);
    w.put(0, 1); // frame_id_numbers_present
    w.put(0, 3);
    w.put(0, 4);
    w.put(0, 1); // enable_order_hint
    w.put(1, 1); // seq_choose_screen_content_tools
    w.put(1, 1); // seq_choose_integer_mv
    w.put(0, 3);
    w.put(0, 1); // high_bitdepth
    w.put(0, 1); // mono_chrome
    w.put(0, 1); // color_description_present
    w.put(0, 1); // color_range
    w.put(0, 2); // chroma_sample_position
    w.put(0, 1); // separate_uv_delta_q
    w.put(0, 1); // film_grain_params_present
    w.finish()
}
