use super::sample::{floor_index, sample_roi_with};
use super::*;
use crate::core::geometry::Roi;

#[test]
fn floor_index_is_floor() {
    for x in [-2.5f32, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 2.75, 1e6, -1e6 - 0.5] {
        assert_eq!(floor_index(x), x.floor() as isize, "{x}");
    }
    assert_eq!(floor_index(f32::NAN), 0);
}

/// `frame` sampled unrotated, unscaled into `n` x `n` around (cx, cy), `side` pixels wide.
fn sample_square(frame: &Frame, (cx, cy): (f32, f32), side: f32, n: usize) -> Vec<f32> {
    let roi = Roi { cx, cy, side, angle: 0.0 };
    let mut out = vec![0.0; 3 * n * n];
    sample_roi(frame, &roi, n, false, 1.0, 0.0, Planes::nchw(&mut out, n));
    out
}

fn gradient(w: usize, h: usize, layout: PixelLayout, stride: usize) -> Vec<u8> {
    let bpp = layout.bytes_per_pixel();
    let [ro, go, bo] = layout.rgb_offsets();
    let mut v = vec![7u8; stride * h];
    for y in 0..h {
        for x in 0..w {
            let p = y * stride + x * bpp;
            v[p + ro] = x as u8;
            v[p + go] = y as u8;
            v[p + bo] = 200;
        }
    }
    v
}

#[test]
fn identity_sampling_reproduces_pixels() {
    for layout in [PixelLayout::Rgba, PixelLayout::Bgrx, PixelLayout::Rgb, PixelLayout::Bgr] {
        let stride = 8 * layout.bytes_per_pixel() + 5;
        let data = gradient(8, 8, layout, stride);
        let frame = Frame::new(&data, 8, 8, stride, layout);
        let out = sample_square(&frame, (4.0, 4.0), 8.0, 8);
        for y in 0..8 {
            for x in 0..8 {
                assert!((out[y * 8 + x] - x as f32).abs() < 1e-4, "{layout:?}");
                assert!((out[64 + y * 8 + x] - y as f32).abs() < 1e-4);
                assert!((out[128 + y * 8 + x] - 200.0).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn outside_is_black_and_normalised() {
    let data = gradient(4, 4, PixelLayout::Rgb, 12);
    let frame = Frame::new(&data, 4, 4, 12, PixelLayout::Rgb);
    let roi = Roi { cx: 100.0, cy: 100.0, side: 4.0, angle: 0.0 };
    let mut out = vec![0.0; 3 * 16];
    sample_roi(&frame, &roi, 4, false, 1.0 / 127.5, -1.0, Planes::nchw(&mut out, 4));
    assert!(out.iter().all(|v| (*v + 1.0).abs() < 1e-6));
}

#[test]
fn rotated_sampling_turns_the_image() {
    // A quarter turn: output x runs along frame y.
    let data = gradient(8, 8, PixelLayout::Rgb, 24);
    let frame = Frame::new(&data, 8, 8, 24, PixelLayout::Rgb);
    let roi = Roi { cx: 4.0, cy: 4.0, side: 8.0, angle: std::f32::consts::FRAC_PI_2 };
    let mut out = vec![0.0; 3 * 64];
    sample_roi(&frame, &roi, 8, false, 1.0, 0.0, Planes::nchw(&mut out, 8));
    // green = frame y; along output x it must grow.
    assert!((out[64 + 3 * 8 + 1] - 1.0).abs() < 1e-3);
    assert!((out[64 + 3 * 8 + 6] - 6.0).abs() < 1e-3);
}

#[test]
fn yuv_colours_match_bt601_and_round_trip() {
    let bt601 = YuvColor::bt601();
    assert_eq!(bt601.yuv([255, 255, 255]), [235, 128, 128]);
    assert_eq!(bt601.yuv([0, 0, 0]), [16, 128, 128]);
    assert_eq!(bt601.yuv([255, 0, 0]), [81, 90, 240]);
    for color in [bt601, YuvColor::bt709(), YuvColor::bt2020(true)] {
        for rgb in [[255, 48, 48], [48, 255, 48], [224, 224, 224], [10, 20, 200]] {
            let [y, u, v] = color.yuv(rgb).map(f32::from);
            let back = color.rgb(y, u, v);
            for (a, b) in back.iter().zip(rgb) {
                assert!((a - b as f32).abs() < 2.5, "{rgb:?} -> {back:?}");
            }
        }
    }
}

/// A `w` x `h` 4:2:0 frame's planes: Y from `luma(x, y)`, chroma `uv` everywhere, strides
/// padded by `pad`, padding bytes 0xAB.
fn yuv_planes(
    chroma: Chroma,
    w: usize,
    h: usize,
    pad: usize,
    luma: impl Fn(usize, usize) -> u8,
    uv: [u8; 2],
) -> (Vec<Vec<u8>>, [usize; 3]) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let ys = w + pad;
    let mut y = vec![0xAB; ys * h];
    for row in 0..h {
        for x in 0..w {
            y[row * ys + x] = luma(x, row);
        }
    }
    match chroma {
        Chroma::Planar => {
            let cs = cw + pad;
            let mut u = vec![0xAB; cs * ch];
            let mut v = vec![0xAB; cs * ch];
            for row in 0..ch {
                u[row * cs..row * cs + cw].fill(uv[0]);
                v[row * cs..row * cs + cw].fill(uv[1]);
            }
            (vec![y, u, v], [ys, cs, cs])
        }
        Chroma::Interleaved => {
            let cs = 2 * cw + pad;
            let mut c = vec![0xAB; cs * ch];
            for row in 0..ch {
                for x in 0..cw {
                    c[row * cs + 2 * x..row * cs + 2 * x + 2].copy_from_slice(&uv);
                }
            }
            (vec![y, c, Vec::new()], [ys, cs, 0])
        }
    }
}

/// The frame over planes from [`yuv_planes`].
fn yuv_frame<'a>(
    planes: &'a [Vec<u8>],
    strides: [usize; 3],
    (w, h): (usize, usize),
    chroma: Chroma,
    color: YuvColor,
) -> Frame<'a> {
    Frame::with_planes(w, h, PixelFormat::Yuv420(chroma, color), [&planes[0], &planes[1], &planes[2]], strides)
}

#[test]
fn yuv420_sampling_converts_to_rgb() {
    let color = YuvColor::bt601();
    for chroma in [Chroma::Planar, Chroma::Interleaved] {
        // Luma ramp 16 + 10 x, neutral chroma: grey levels (10 x) * 255 / 219.
        let (planes, strides) = yuv_planes(chroma, 9, 7, 3, |x, _| 16 + 10 * x as u8, [128; 2]);
        let frame = yuv_frame(&planes, strides, (9, 7), chroma, color);
        let out = sample_square(&frame, (3.5, 3.5), 7.0, 7);
        for x in 0..7 {
            let want = 10.0 * x as f32 * 255.0 / 219.0;
            for plane in 0..3 {
                let got = out[plane * 49 + 3 * 7 + x];
                assert!((got - want).abs() < 0.01, "{chroma:?} x {x}: {got} vs {want}");
            }
        }
        // A uniform colour comes back as itself.
        let [y, u, v] = color.yuv([200, 40, 90]);
        let (planes, strides) = yuv_planes(chroma, 5, 5, 0, |_, _| y, [u, v]);
        let frame = yuv_frame(&planes, strides, (5, 5), chroma, color);
        let out = sample_square(&frame, (2.5, 2.5), 1.0, 1);
        for (got, want) in out.iter().zip([200.0, 40.0, 90.0]) {
            assert!((got - want).abs() < 2.5, "{chroma:?}: {out:?}");
        }
    }
}

/// Pseudo-random bytes (no extra dependency).
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut s = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        })
        .collect()
}

/// The vector code gives what the one-pixel-at-a-time code gives, for every format, on
/// regions inside, across and outside the frame's edges, turned, scaled and mirrored,
/// written into planes with borders.
#[test]
fn vector_sampling_matches_pixel_by_pixel() {
    let (w, h) = (37, 29);
    let rois = [
        (18.0, 14.0, 20.0, 0.0),
        (18.5, 13.2, 31.0, 0.7),
        (2.0, 3.0, 24.0, -2.1),
        (35.0, 27.0, 16.0, 3.0),
        (100.0, -40.0, 10.0, 0.2),
    ];
    let check = |frame: &Frame, what: &str| {
        for (k, &(cx, cy, side, angle)) in rois.iter().enumerate() {
            for mirrored in [false, true] {
                let roi = Roi { cx, cy, side, angle };
                let n = 24;
                let (row, plane) = (n + 5, (n + 5) * (n + 3));
                let run = |vectors| {
                    let mut v = vec![-7.0f32; 3 * plane];
                    let out = Planes { data: &mut v, plane, row };
                    sample_roi_with(frame, &roi, n, mirrored, (1.0 / 255.0, 0.5), out, vectors);
                    v
                };
                let (a, b) = (run(true), run(false));
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    assert!((x - y).abs() < 1e-4, "{what} roi {k} mirrored {mirrored} at {i}: {x} vs {y}");
                }
            }
        }
    };
    for layout in [PixelLayout::Rgba, PixelLayout::Bgrx, PixelLayout::Rgb, PixelLayout::Bgr] {
        for pad in [0, 3] {
            let stride = w * layout.bytes_per_pixel() + pad;
            let data = noise(stride * h, 5);
            check(&Frame::new(&data, w, h, stride, layout), &format!("{layout:?} pad {pad}"));
        }
    }
    for chroma in [Chroma::Planar, Chroma::Interleaved] {
        for pad in [0, 2] {
            let (mut planes, strides) = yuv_planes(chroma, w, h, pad, |_, _| 0, [0; 2]);
            for (i, p) in planes.iter_mut().enumerate() {
                let n = p.len();
                p.copy_from_slice(&noise(n, 11 + i as u32));
            }
            let frame = yuv_frame(&planes, strides, (w, h), chroma, YuvColor::bt709());
            check(&frame, &format!("{chroma:?} pad {pad}"));
        }
    }
}

#[test]
fn mirrored_sampling_reverses_rows() {
    let data = gradient(8, 8, PixelLayout::Rgb, 24);
    let frame = Frame::new(&data, 8, 8, 24, PixelLayout::Rgb);
    let roi = Roi { cx: 4.0, cy: 4.0, side: 8.0, angle: 0.3 };
    let mut plain = vec![0.0; 3 * 64];
    let mut mirrored = vec![0.0; 3 * 64];
    sample_roi(&frame, &roi, 8, false, 1.0, 0.0, Planes::nchw(&mut plain, 8));
    sample_roi(&frame, &roi, 8, true, 1.0, 0.0, Planes::nchw(&mut mirrored, 8));
    for row in 0..24 {
        for x in 0..8 {
            let (a, b) = (plain[row * 8 + x], mirrored[row * 8 + 7 - x]);
            assert!((a - b).abs() < 1e-3, "row {row} x {x}: {a} vs {b}");
        }
    }
}

#[test]
fn put_writes_luma_and_the_shared_chroma_sample() {
    let color = YuvColor::bt709();
    for chroma in [Chroma::Planar, Chroma::Interleaved] {
        let (mut planes, strides) = yuv_planes(chroma, 7, 5, 2, |_, _| 50, [128; 2]);
        let before = planes.clone();
        let (p0, rest) = planes.split_at_mut(1);
        let (p1, p2) = rest.split_at_mut(1);
        let mut frame = FrameMut::with_planes(
            7,
            5,
            PixelFormat::Yuv420(chroma, color),
            [&mut p0[0], &mut p1[0], &mut p2[0]],
            strides,
        );
        let value = frame.encode([255, 48, 48]);
        frame.put(6, 4, value);
        frame.put(7, 4, value);
        frame.put(-1, 0, value);
        assert_eq!(planes[0][4 * strides[0] + 6], value[0]);
        let (u, v) = match chroma {
            Chroma::Planar => (planes[1][2 * strides[1] + 3], planes[2][2 * strides[2] + 3]),
            Chroma::Interleaved => (planes[1][2 * strides[1] + 6], planes[1][2 * strides[1] + 7]),
        };
        assert_eq!([u, v], [value[1], value[2]], "{chroma:?}");
        // Exactly one luma byte and one chroma sample changed.
        let changed: usize =
            planes.iter().zip(&before).map(|(a, b)| a.iter().zip(b).filter(|(x, y)| x != y).count()).sum();
        assert_eq!(changed, 3, "{chroma:?}");
    }
}

#[test]
fn owned_copy_drops_padding_and_keeps_pixels() {
    let data = gradient(5, 3, PixelLayout::Bgr, 20);
    let frame = Frame::new(&data, 5, 3, 20, PixelLayout::Bgr);
    let mut copy = OwnedFrame::default();
    assert!(copy.as_frame().is_none());
    copy.fill_from(&frame);
    let back = copy.as_frame().unwrap();
    assert_eq!(back.plane(0).1, 15);
    for y in 0..3 {
        assert_eq!(back.plane(0).0[y * 15..y * 15 + 15], data[y * 20..y * 20 + 15]);
    }
    let (planes, strides) = yuv_planes(Chroma::Interleaved, 3, 3, 4, |x, y| (x + 3 * y) as u8, [7, 9]);
    let nv12 = yuv_frame(&planes, strides, (3, 3), Chroma::Interleaved, YuvColor::bt601());
    copy.fill_from(&nv12);
    let back = copy.as_frame().unwrap();
    assert_eq!(back.plane(0), (&[0u8, 1, 2, 3, 4, 5, 6, 7, 8][..], 3));
    assert_eq!(back.plane(1), (&[7u8, 9, 7, 9, 7, 9, 7, 9][..], 4));
    assert!(back.plane(2).0.is_empty());
}
