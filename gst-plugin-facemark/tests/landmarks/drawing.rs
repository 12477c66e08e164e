//! Drawing a found face onto frames of several pixel layouts.

use crate::common::Rgb;
use crate::{marker, run};
use gstfacemark::Config;
use gstfacemark::core::draw::{draw_face, flags};
use gstfacemark::core::image::{FrameMut, PixelLayout};

/// Drawing paints the eye corners in the eye-contour colours and leaves far pixels alone.
#[test]
fn drawing_marks_the_face_only() {
    let img = Rgb::load("astronaut.png");
    let mut m = marker(Config::default());
    let faces = run(&mut m, &img);
    assert_eq!(faces.len(), 1);
    for layout in [PixelLayout::Rgb, PixelLayout::Bgrx] {
        let stride = img.width * layout.bytes_per_pixel() + 12;
        let mut buf = img.to_layout(layout, stride);
        let before = buf.clone();
        let mut frame = FrameMut::new(&mut buf, img.width, img.height, stride, layout);
        draw_face(&mut frame, &faces[0], flags::DEFAULT);
        let bpp = layout.bytes_per_pixel();
        let [ro, go, bo] = layout.rgb_offsets();
        let at = |b: &[u8], x: usize, y: usize| {
            let p = y * stride + x * bpp;
            [b[p + ro], b[p + go], b[p + bo]]
        };
        let corner = |i: usize| (faces[0].landmarks[i][0] as usize, faces[0].landmarks[i][1] as usize);
        let (x, y) = corner(33);
        assert_eq!(at(&buf, x, y), [255, 48, 48], "right eye corner red");
        assert_ne!(at(&before, x, y), [255, 48, 48]);
        let (x, y) = corner(263);
        assert_eq!(at(&buf, x, y), [48, 255, 48], "left eye corner green");
        // Far from the face (the box is around x 160..290, y 40..200): untouched, padding too.
        for (x, y) in [(5, 5), (500, 500), (20, 300), (450, 60), (256, 480)] {
            assert_eq!(at(&buf, x, y), at(&before, x, y), "({x}, {y})");
        }
        for y in 0..img.height {
            assert_eq!(
                &buf[y * stride + img.width * bpp..(y + 1) * stride],
                &before[y * stride + img.width * bpp..(y + 1) * stride]
            );
        }
        // The tesselation is drawn: many pixels inside the face turn light grey.
        let grey = (0..img.height)
            .flat_map(|y| (0..img.width).map(move |x| (x, y)))
            .filter(|&(x, y)| at(&buf, x, y) == [192, 192, 192] && at(&before, x, y) != [192, 192, 192])
            .count();
        assert!(grey > 500, "{grey} tesselation pixels");
    }
}
