//! Landmarks against the onnxruntime reference, and every runtime against tract on the model
//! as it is.

use crate::common::{Rgb, model_dir, reference};
use crate::{marker, run};
use gstfacemark::Config;

/// Mesh indices 33, 133, 263, 362 (eye corners), 1 (nose tip), 61, 291 (mouth corners),
/// 152 (chin) and the iris centres 468, 473 within 3 px of the onnxruntime reference.
fn check_reference(image: &str) {
    let img = Rgb::load(image);
    let mut m = marker(Config { tracking: false, ..Config::default() });
    let faces = run(&mut m, &img);
    assert_eq!(faces.len(), 1, "{image}: exactly one face");
    let face = &faces[0];
    assert!(face.score > 0.9, "{image}: presence {}", face.score);
    let refs = reference(image);
    assert_eq!(refs.len(), 10);
    assert_eq!(face.points().count(), 478);
    for (i, x, y) in refs {
        let p = face.point(i).unwrap();
        let d = ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt();
        assert!(d <= 3.0, "{image}: landmark {i} at ({}, {}), reference ({x}, {y}), {d:.2} px off", p[0], p[1]);
    }
}

#[test]
fn astronaut_landmarks_match_reference() {
    check_reference("astronaut.png");
}

#[test]
fn grace_hopper_landmarks_match_reference() {
    check_reference("grace_hopper.png");
}

/// Every runtime gives the same outputs as tract on the model as it is: the fused engine
/// (which must be the one `auto` picks for these models) and tract with PRelu rewritten, on a
/// pseudo-random input and on the astronaut's face crop, for all three models.
#[test]
fn runtimes_agree_with_tract_on_the_model_as_it_is() {
    use gstfacemark::core::model::{DETECTOR_FILE, IRIS_FILE, LANDMARK_FILE, Net, Runtime};
    let dir = model_dir();
    let img = Rgb::load("astronaut.png");
    for (file, size, outs) in [
        (DETECTOR_FILE, 128, &[896 * 16, 896][..]),
        (LANDMARK_FILE, 192, &[1404, 1][..]),
        (IRIS_FILE, 64, &[213, 15][..]),
    ] {
        let mut nets: Vec<Net> = [Runtime::TractAsIs, Runtime::Tract, Runtime::Auto]
            .iter()
            .map(|&r| Net::load_with(&dir.join(file), size, outs, r).unwrap())
            .collect();
        assert!(nets[2].runtime().starts_with("fused"), "{file}: {}", nets[2].runtime());
        for input in 0..2 {
            for net in nets.iter_mut() {
                let x = net.input();
                // a deterministic pseudo-random input in [0, 1], or the image scaled to the
                // input, in [0, 1]
                let mut s = 12345u32;
                for c in 0..3 {
                    for y in 0..size {
                        for xx in 0..size {
                            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                            x.data[c * x.plane + y * x.row + xx] = if input == 0 {
                                (s >> 8) as f32 / (1u32 << 24) as f32
                            } else {
                                let p = img.pixel(xx * img.width / size, y * img.height / size);
                                p[c] as f32 / 255.0
                            };
                        }
                    }
                }
                net.run().unwrap();
            }
            for &len in outs {
                let reference = nets[0].output(len);
                assert_eq!(reference.len(), len);
                for net in &nets[1..] {
                    let worst = reference
                        .iter()
                        .zip(net.output(len))
                        .map(|(p, q)| (p - q).abs() / (1.0 + p.abs()))
                        .fold(0.0f32, f32::max);
                    assert!(worst < 1e-4, "{file} ({}), input {input}: output {len} differs by {worst}", net.runtime());
                }
            }
        }
    }
}
