//! The attention model (trunk, heads and the glue between them) against MediaPipe itself.

use crate::common::{Rgb, data, model_dir};
use gstfacemark::core::model::{Models, Runtime, load_models};
use gstfacemark::core::refine::Refiner;
use gstfacemark::core::tracker::Stats;

/// MediaPipe's own 478 points on its crop of the astronaut (tests/data/attention_mediapipe_478.txt).
fn mediapipe_points() -> Vec<[f32; 3]> {
    std::fs::read_to_string(data("attention_mediapipe_478.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let v: Vec<f32> = l.split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
            [v[0], v[1], v[2]]
        })
        .collect()
}

/// On the crop MediaPipe's FaceMesh (refine_landmarks) made of astronaut.png, the trunk, the
/// three heads and the glue give MediaPipe's 478 points (its interpreter with its custom ops)
/// within 0.01 crop pixels, on the fused engine and on tract.
#[test]
fn the_478_points_are_mediapipes() {
    let expected = mediapipe_points();
    assert_eq!(expected.len(), 478);
    let crop = Rgb::load("attention_crop.png");
    assert_eq!((crop.width, crop.height), (192, 192));
    for runtime in [Runtime::Auto, Runtime::Tract] {
        let Models { mut landmarker, refiner, .. } = load_models(&model_dir(), runtime).unwrap();
        let heads_runtime = refiner.runtime().unwrap_or_default();
        if runtime == Runtime::Auto {
            assert!(landmarker.runtime().starts_with("fused"), "trunk: {}", landmarker.runtime());
            assert!(heads_runtime.contains("fused"), "{heads_runtime}");
        }
        let Refiner::Attention(mut heads) = refiner else { panic!("the attention model is installed") };
        let input = landmarker.input();
        for y in 0..192 {
            for x in 0..192 {
                for c in 0..3 {
                    input.data[c * input.plane + y * input.row + x] = crop.data[(y * 192 + x) * 3 + c] as f32 / 255.0;
                }
            }
        }
        landmarker.run().unwrap();
        let mut stats = Stats::default();
        let points = heads.run(&landmarker, &mut [None, None], [true, true], &mut stats).unwrap();
        assert_eq!(stats.iris_runs, 2);
        let (mut worst, mut at) = (0.0f32, 0);
        for (i, (p, e)) in points.iter().zip(&expected).enumerate() {
            let d = (0..3).map(|k| (p[k] - e[k]).abs()).fold(0.0, f32::max);
            if d > worst {
                (worst, at) = (d, i);
            }
        }
        assert!(worst < 0.01, "{runtime:?}: point {at} at {:?}, MediaPipe's at {:?}", points[at], expected[at]);
        eprintln!("{runtime:?} ({}, {heads_runtime}): worst {worst:.5} crop px (point {at})", landmarker.runtime());
    }
}
