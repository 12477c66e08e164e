//! The video formats the element takes, and how the core reads each one (YUV matrix and range
//! from the caps' colorimetry).

use crate::core::image::{Chroma, PixelFormat, PixelLayout, YuvColor};

/// Formats read and drawn on directly, without a conversion.
pub(super) const FORMATS: [gst_video::VideoFormat; 8] = [
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Nv12,
];

/// How the core reads a negotiated format; `None` for formats outside [`FORMATS`].
pub(super) fn pixel_format(info: &gst_video::VideoInfo) -> Option<PixelFormat> {
    use gst_video::VideoFormat as F;
    let packed = |layout| Some(PixelFormat::Packed(layout));
    match info.format() {
        F::Rgba => packed(PixelLayout::Rgba),
        F::Bgra => packed(PixelLayout::Bgra),
        F::Rgbx => packed(PixelLayout::Rgbx),
        F::Bgrx => packed(PixelLayout::Bgrx),
        F::Rgb => packed(PixelLayout::Rgb),
        F::Bgr => packed(PixelLayout::Bgr),
        F::I420 => Some(PixelFormat::Yuv420(Chroma::Planar, yuv_color(info))),
        F::Nv12 => Some(PixelFormat::Yuv420(Chroma::Interleaved, yuv_color(info))),
        _ => None,
    }
}

/// The caps' YUV matrix and range; unknown matrices as GStreamer guesses them (BT.601 up to
/// 576 lines, BT.709 above).
fn yuv_color(info: &gst_video::VideoInfo) -> YuvColor {
    use gst_video::VideoColorMatrix as M;
    let colorimetry = info.colorimetry();
    let (kr, kb) = match colorimetry.matrix() {
        M::Bt601 => (0.299, 0.114),
        M::Bt709 => (0.2126, 0.0722),
        M::Bt2020 => (0.2627, 0.0593),
        M::Fcc => (0.30, 0.11),
        M::Smpte240m => (0.212, 0.087),
        _ if info.height() > 576 => (0.2126, 0.0722),
        _ => (0.299, 0.114),
    };
    let full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    YuvColor::new(kr, kb, full_range)
}
