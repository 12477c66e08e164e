//! Shared helpers for the facemark tests: model location, test images, reference landmarks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gstfacemark::core::image::PixelLayout;

/// The models the tests need. They are not part of the repository: scripts/fetch-models.sh
/// installs them (`make test` runs it first). Missing models fail the test, never skip it.
/// The face models' folder (scripts/fetch-models.sh installs them), with every model there:
/// the detector, the attention model (what facemark runs when it is installed) and the older
/// mesh and iris models.
pub fn model_dir() -> PathBuf {
    let dir = gstfacemark::default_model_dir();
    for f in ATTENTION_FILES.iter().chain(&LEGACY_FILES) {
        if !dir.join(f).is_file() {
            panic!(
                "face model {} is missing: run scripts/fetch-models.sh (or set FACEMARK_MODEL_DIR \
                 to a folder holding the models) before running these tests",
                dir.join(f).display()
            );
        }
    }
    dir
}

/// The detector and the older mesh and iris models: what a model folder fetched before the
/// attention model held.
const LEGACY_FILES: [&str; 3] = ["face_detection_short_range.onnx", "face_landmark.onnx", "iris_landmark.onnx"];
/// The attention model's parts.
const ATTENTION_FILES: [&str; 4] = [
    "face_landmark_with_attention.onnx",
    "face_landmark_with_attention_lips.onnx",
    "face_landmark_with_attention_left_eye.onnx",
    "face_landmark_with_attention_right_eye.onnx",
];

/// A folder (made once per test process) holding links to the [`model_dir`]'s detector, mesh
/// and iris models only: facemark then runs the older mesh + iris path.
pub fn legacy_model_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let src = model_dir();
        let dir = std::env::temp_dir().join(format!("facemark-legacy-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in LEGACY_FILES {
            let link = dir.join(f);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(src.join(f), &link).unwrap();
        }
        dir
    })
    .clone()
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// An 8-bit RGB image.
#[derive(Clone)]
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb {
    pub fn load(name: &str) -> Rgb {
        let file = std::fs::File::open(data(name)).unwrap();
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let channels = info.color_type.samples();
        let mut data = Vec::with_capacity(w * h * 3);
        for px in buf[..w * h * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => data.extend([px[0]; 3]),
                _ => data.extend(&px[..3]),
            }
        }
        Rgb { width: w, height: h, data }
    }

    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Rgb {
        Rgb { width, height, data: rgb.repeat(width * height) }
    }

    /// Copies `src` with its top-left corner at (x, y), clipped.
    pub fn paste(&mut self, src: &Rgb, x: isize, y: isize) {
        for sy in 0..src.height {
            let dy = sy as isize + y;
            if dy < 0 || dy >= self.height as isize {
                continue;
            }
            for sx in 0..src.width {
                let dx = sx as isize + x;
                if dx < 0 || dx >= self.width as isize {
                    continue;
                }
                let d = (dy as usize * self.width + dx as usize) * 3;
                let s = (sy * src.width + sx) * 3;
                self.data[d..d + 3].copy_from_slice(&src.data[s..s + 3]);
            }
        }
    }

    /// Scaled by `factor` (nearest neighbour).
    pub fn scaled(&self, factor: f32) -> Rgb {
        let (w, h) = ((self.width as f32 * factor) as usize, (self.height as f32 * factor) as usize);
        let mut out = Rgb::filled(w, h, [0; 3]);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (((x as f32 + 0.5) / factor) as usize, ((y as f32 + 0.5) / factor) as usize);
                let p = self.pixel(sx.min(self.width - 1), sy.min(self.height - 1));
                out.data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&p);
            }
        }
        out
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let p = (y * self.width + x) * 3;
        [self.data[p], self.data[p + 1], self.data[p + 2]]
    }

    /// The image in `layout`, rows `stride` bytes apart (padding filled with 0xAB).
    pub fn to_layout(&self, layout: PixelLayout, stride: usize) -> Vec<u8> {
        let bpp = layout.bytes_per_pixel();
        let [ro, go, bo] = layout.rgb_offsets();
        let mut out = vec![0xAB; stride * self.height];
        for y in 0..self.height {
            for x in 0..self.width {
                let p = y * stride + x * bpp;
                let [r, g, b] = self.pixel(x, y);
                out[p + ro] = r;
                out[p + go] = g;
                out[p + bo] = b;
                if bpp == 4 {
                    out[p + 6 - ro - go - bo] = 255;
                }
            }
        }
        out
    }
}

/// Reference landmark positions of the attention model (what facemark runs by default) from
/// tests/data/reference_attention_landmarks.txt: (index, x, y). They come from an independent run
/// (onnxruntime + numpy), see tests/reference/reference_landmarks.py.
pub fn reference(image: &str) -> Vec<(usize, f32, f32)> {
    reference_in("reference_attention_landmarks.txt", image)
}

/// The older mesh + iris models' reference positions (tests/data/reference_landmarks.txt), for
/// [`legacy_model_dir`].
pub fn legacy_reference(image: &str) -> Vec<(usize, f32, f32)> {
    reference_in("reference_landmarks.txt", image)
}

fn reference_in(file: &str, image: &str) -> Vec<(usize, f32, f32)> {
    std::fs::read_to_string(data(file))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == image)
                .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .collect()
}
