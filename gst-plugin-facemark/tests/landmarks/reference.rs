//! Landmarks against the onnxruntime reference, and every runtime against tract on the model
//! as it is.

use crate::common::{Rgb, legacy_model_dir, legacy_reference, model_dir, reference};
use crate::run;
use gstfacemark::{Config, FaceMarker};

/// The reference's points within 3 px, with the attention model (the default) or the older
/// mesh + iris models: mesh indices 33, 133, 263, 362 (eye corners), 1 (nose tip), 61, 291
/// (mouth corners), 152 (chin) and the iris centres 468, 473; the attention model's reference
/// also has inner lips (13, 14), eyelids (159, 145, 386, 374) and all 10 iris points.
fn check_reference(image: &str, legacy: bool) {
    let img = Rgb::load(image);
    let dir = if legacy { legacy_model_dir() } else { model_dir() };
    let mut m = FaceMarker::new(&dir, Config { tracking: false, ..Config::default() }).unwrap();
    assert_eq!(m.runtimes().contains("attention"), !legacy, "{}", m.runtimes());
    let faces = run(&mut m, &img);
    assert_eq!(faces.len(), 1, "{image}: exactly one face");
    let face = &faces[0];
    assert!(face.score > 0.9, "{image}: presence {}", face.score);
    let refs = if legacy { legacy_reference(image) } else { reference(image) };
    assert_eq!(refs.len(), if legacy { 10 } else { 24 });
    assert_eq!(face.points().count(), 478);
    for (i, x, y) in refs {
        let p = face.point(i).unwrap();
        let d = ((p[0] - x).powi(2) + (p[1] - y).powi(2)).sqrt();
        assert!(d <= 3.0, "{image}: landmark {i} at ({}, {}), reference ({x}, {y}), {d:.2} px off", p[0], p[1]);
    }
}

#[test]
fn astronaut_landmarks_match_reference() {
    check_reference("astronaut.png", false);
}

#[test]
fn grace_hopper_landmarks_match_reference() {
    check_reference("grace_hopper.png", false);
}

#[test]
fn astronaut_landmarks_match_reference_with_the_older_models() {
    check_reference("astronaut.png", true);
}

#[test]
fn grace_hopper_landmarks_match_reference_with_the_older_models() {
    check_reference("grace_hopper.png", true);
}

/// Every runtime gives the same outputs as tract on the model as it is: the fused engine
/// (which must be the one `auto` picks for these models) and tract with PRelu rewritten, on a
/// pseudo-random input and on the astronaut's face (its first 3 channels for the attention
/// heads, whose input is a 32-channel feature map), for every model.
#[test]
fn runtimes_agree_with_tract_on_the_model_as_it_is() {
    use gstfacemark::core::attention;
    use gstfacemark::core::model::{DETECTOR_FILE, IRIS_FILE, LANDMARK_FILE, Net, Runtime};
    use gstfacemark::core::refine::Heads;
    let dir = model_dir();
    let img = Rgb::load("astronaut.png");
    let mut models = vec![
        (DETECTOR_FILE, 3, 128, vec![896 * 16, 896]),
        (LANDMARK_FILE, 3, 192, vec![1404, 1]),
        (IRIS_FILE, 3, 64, vec![213, 15]),
        (attention::TRUNK_FILE, 3, 192, attention::TRUNK_OUTPUTS.to_vec()),
    ];
    for region in Heads::REGIONS {
        models.push((region.file, attention::MAP_CHANNELS, attention::CROP_SIDE, region.outputs()));
    }
    for (file, channels, size, outs) in models {
        let outs = &outs[..];
        let mut nets: Vec<Net> = [Runtime::TractAsIs, Runtime::Tract, Runtime::Auto]
            .iter()
            .map(|&r| Net::load_planes(&dir.join(file), channels, size, outs, r).unwrap())
            .collect();
        assert!(nets[2].runtime().starts_with("fused"), "{file}: {}", nets[2].runtime());
        for input in 0..2 {
            for net in nets.iter_mut() {
                let x = net.input();
                // a deterministic pseudo-random input in [0, 1], or the image scaled to the
                // input, in [0, 1]
                let mut s = 12345u32;
                for c in 0..channels {
                    for y in 0..size {
                        for xx in 0..size {
                            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                            x.data[c * x.plane + y * x.row + xx] = if input == 0 {
                                (s >> 8) as f32 / (1u32 << 24) as f32
                            } else {
                                let p = img.pixel(xx * img.width / size, y * img.height / size);
                                p[c % 3] as f32 / 255.0
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
