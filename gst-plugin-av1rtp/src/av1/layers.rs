//! One operating point of a scalable AV1 stream (sans-IO): the OBUs of spatial or temporal
//! layers above a limit are left out of a temporal unit, so that a recording or a decoder gets
//! only the layers it wants (a browser's L1T3 at a third of the frame rate, L3T3's smallest
//! size). OBUs without an extension header (sequence header, temporal delimiter, non-scalable
//! frames) belong to every operating point and stay.

use super::obu::{ObuHeader, Obus, obu_type};

/// The highest spatial and temporal layer ids kept (`None`: every layer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerLimit {
    /// The highest `spatial_id` kept (0..=3).
    pub spatial: Option<u8>,
    /// The highest `temporal_id` kept (0..=7).
    pub temporal: Option<u8>,
}

impl LayerLimit {
    /// Whether there is no limit at all, so a temporal unit passes untouched.
    pub fn keeps_all(&self) -> bool {
        self.spatial.is_none() && self.temporal.is_none()
    }

    /// Whether an OBU with this header stays: it has no extension header, or its ids are within the limit.
    pub fn keeps(&self, header: &ObuHeader) -> bool {
        !header.has_extension()
            || (self.spatial.is_none_or(|s| header.spatial_id() <= s)
                && self.temporal.is_none_or(|t| header.temporal_id() <= t))
    }
}

/// What is left of a temporal unit (low-overhead OBUs with size fields, as rtpav1depay-rs
/// writes them) within `limit`; `None` when no frame is left in it (the unit is dropped).
/// A unit that does not parse is left whole: dropping it is the depayloader's call, not ours.
pub fn keep_layers(tu: &[u8], limit: LayerLimit) -> Option<Vec<u8>> {
    if limit.keeps_all() {
        return Some(tu.to_vec());
    }
    let mut out = Vec::with_capacity(tu.len());
    let mut has_frame = false;
    for obu in Obus::new(tu, false) {
        let Ok(obu) = obu else { return Some(tu.to_vec()) };
        if !limit.keeps(&obu.header) {
            continue;
        }
        has_frame |= matches!(obu.header.obu_type(), obu_type::FRAME | obu_type::FRAME_HEADER | obu_type::TILE_GROUP);
        obu.write_sized(&mut out);
    }
    has_frame.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OBU with a size field, and an extension header when `layer` = (temporal, spatial).
    fn obu(kind: u8, layer: Option<(u8, u8)>, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![kind << 3 | 0b010 | u8::from(layer.is_some()) << 2];
        if let Some((t, s)) = layer {
            out.push(t << 5 | s << 3);
        }
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
        out
    }

    /// A TU of an L2T2-like stream: TD, sequence header, then frames of (temporal, spatial).
    fn tu(layers: &[(u8, u8)]) -> Vec<u8> {
        let mut out = obu(obu_type::TEMPORAL_DELIMITER, None, &[]);
        out.extend(obu(obu_type::SEQUENCE_HEADER, None, &[1, 2, 3]));
        for &(t, s) in layers {
            out.extend(obu(obu_type::FRAME, Some((t, s)), &[0x10 + t, 0x20 + s]));
        }
        out
    }

    #[test]
    fn every_layer_is_kept_without_a_limit() {
        let whole = tu(&[(0, 0), (0, 1)]);
        assert_eq!(keep_layers(&whole, LayerLimit::default()), Some(whole));
    }

    #[test]
    fn spatial_layers_above_the_limit_go_and_the_rest_is_byte_exact() {
        let whole = tu(&[(0, 0), (0, 1), (0, 2)]);
        let kept = keep_layers(&whole, LayerLimit { spatial: Some(0), temporal: None }).unwrap();
        assert_eq!(kept, tu(&[(0, 0)]));
        let kept = keep_layers(&whole, LayerLimit { spatial: Some(1), temporal: None }).unwrap();
        assert_eq!(kept, tu(&[(0, 0), (0, 1)]));
    }

    #[test]
    fn a_unit_of_a_higher_temporal_layer_only_is_dropped() {
        let limit = LayerLimit { spatial: None, temporal: Some(0) };
        assert_eq!(keep_layers(&tu(&[(2, 0), (2, 1)]), limit), None);
        assert_eq!(keep_layers(&tu(&[(0, 0), (0, 1)]), limit), Some(tu(&[(0, 0), (0, 1)])));
        // Frames without an extension header are in every operating point.
        let plain = [obu(obu_type::TEMPORAL_DELIMITER, None, &[]), obu(obu_type::FRAME, None, &[9])].concat();
        assert_eq!(keep_layers(&plain, limit), Some(plain));
    }

    #[test]
    fn a_unit_that_does_not_parse_is_left_whole() {
        let mut broken = tu(&[(1, 0)]);
        broken.push(0x32); // a sized OBU header with its size missing
        let limit = LayerLimit { spatial: None, temporal: Some(0) };
        assert_eq!(keep_layers(&broken, limit), Some(broken));
    }
}
