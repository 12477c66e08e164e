//! Which decoder facemark gets for a codec: the first installed of a list, NVIDIA's first.

use std::sync::LazyLock;

/// Decoders for facemark, best first (NVIDIA's where the GPU is there, then the CPU ones), one
/// codec a line: the table the pipeline scripts read too (pipelines/lib.sh pick_decoder).
static DECODERS: LazyLock<Vec<(&str, Vec<&str>)>> = LazyLock::new(|| {
    include_str!("../../pipelines/decoders.txt")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut names = line.split_whitespace();
            Some((names.next()?, names.collect()))
        })
        .collect()
});

/// The codecs of the table, in its order.
pub fn codecs() -> impl Iterator<Item = &'static str> {
    DECODERS.iter().map(|(codec, _)| *codec)
}

pub fn installed(factory: &str) -> bool {
    gst::ElementFactory::find(factory).is_some()
}

pub fn decoder_for(codec: &str) -> Option<&'static str> {
    decoder_among(codec, &installed)
}

fn decoder_among(codec: &str, installed: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    let (_, candidates) = DECODERS.iter().find(|(c, _)| *c == codec)?;
    candidates.iter().copied().find(|f| installed(f))
}

/// Which decoder facemark gets for each codec; where NVDEC decodes some codecs but not one
/// (an H200 has no AV1 in NVDEC), that one is said to be decoded on the CPU.
pub fn decoders_line(installed: &dyn Fn(&str) -> bool) -> String {
    let nvidia = |d: &str| d.starts_with("nv");
    let gpu = DECODERS.iter().any(|(codec, _)| decoder_among(codec, installed).is_some_and(nvidia));
    let each: Vec<String> = DECODERS
        .iter()
        .map(|(codec, _)| match decoder_among(codec, installed) {
            None => format!("{codec} with (no decoder: not marked)"),
            Some(d) if gpu && !nvidia(d) => format!("{codec} with {d}: NVDEC here has no {codec}, the CPU decodes it"),
            Some(d) => format!("{codec} with {d}"),
        })
        .collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as the scripts read it: every codec whipcastsrc takes, NVIDIA's first.
    #[test]
    fn every_codec_has_decoders_nvidia_first() {
        let codecs: Vec<&str> = DECODERS.iter().map(|(codec, _)| *codec).collect();
        assert_eq!(codecs, ["AV1", "H264", "H265", "VP8", "VP9"]);
        for (codec, decoders) in DECODERS.iter() {
            assert!(decoders.len() >= 2 && decoders[0].starts_with("nv"), "{codec}: {decoders:?}");
            assert!(decoders[1..].iter().all(|d| !d.starts_with("nv")), "{codec}: {decoders:?}");
        }
        assert_eq!(DECODERS[0].1, ["nvav1dec", "dav1ddec", "av1dec"]);
    }

    #[test]
    fn the_start_line_says_where_nvdec_lacks_a_codec() {
        // An H200 server: NVDEC for H.264, H.265, VP8, VP9, none for AV1.
        let h200 = |f: &str| ["nvh264dec", "nvh265dec", "nvvp8dec", "nvvp9dec", "dav1ddec", "avdec_h264"].contains(&f);
        let line = decoders_line(&h200);
        assert!(line.starts_with("AV1 with dav1ddec: NVDEC here has no AV1, the CPU decodes it, H264 with nvh264dec"));
        assert!(line.ends_with("VP9 with nvvp9dec"), "{line}");
        // No GPU: nothing to say about NVDEC.
        let cpu = |f: &str| ["av1dec", "avdec_h264", "vp8dec"].contains(&f);
        assert_eq!(
            decoders_line(&cpu),
            "AV1 with av1dec, H264 with avdec_h264, H265 with (no decoder: not marked), VP8 with vp8dec, \
             VP9 with (no decoder: not marked)"
        );
    }
}
