//! The iris model: its 10 points on and off, and the irises between runs with `iris_interval`.

use crate::common::Rgb;
use crate::{marker, run};
use gstfacemark::Config;

/// The iris model adds 10 points (478 in all) unless switched off; the iris centres lie
/// between their eye corners.
#[test]
fn irises_on_and_off() {
    let img = Rgb::load("grace_hopper.png");
    let mut m = marker(Config::default());
    let face = run(&mut m, &img).remove(0);
    assert_eq!(face.points().count(), 478);
    for (centre, a, b) in [(468, 33, 133), (473, 362, 263)] {
        let c = face.point(centre).unwrap();
        let (pa, pb) = (face.landmarks[a], face.landmarks[b]);
        assert!(c[0] > pa[0].min(pb[0]) && c[0] < pa[0].max(pb[0]), "iris {centre} x between corners");
        assert!((c[1] - 0.5 * (pa[1] + pb[1])).abs() < 10.0, "iris {centre} y near the corners");
    }
    let mut m = marker(Config { irises: false, ..Config::default() });
    let face = run(&mut m, &img).remove(0);
    assert_eq!(face.points().count(), 468);
    assert_eq!(m.stats().iris_runs, 0);
}

/// The astronaut coming closer while moving: 4 px right, 2 px down and 1 % larger per frame.
fn approaching_face(k: usize) -> Rgb {
    let astronaut = Rgb::load("astronaut.png");
    let mut head = Rgb::filled(240, 240, [0; 3]);
    head.paste(&astronaut, -100, -10);
    let head = head.scaled(1.0 + 0.01 * k as f32);
    let mut canvas = Rgb::filled(640, 480, [128, 128, 128]);
    canvas.paste(&head, 60 + 4 * k as isize, 60 + 2 * k as isize);
    canvas
}

/// With `iris_interval: 2` each eye runs the iris model every other frame, in turn (half the
/// runs), and the irises of the frames between follow the moving eyes: every iris point within
/// 1.5 px of where running the model on every frame puts it.
#[test]
fn irises_between_runs_follow_the_eyes() {
    const FRAMES: usize = 20;
    let mut every = marker(Config::default());
    let mut alternate = marker(Config { iris_interval: 2, ..Config::default() });
    let mut worst = 0.0f32;
    for k in 0..FRAMES {
        let frame = approaching_face(k);
        let (a, b) = (run(&mut every, &frame), run(&mut alternate, &frame));
        assert_eq!((a.len(), b.len()), (1, 1), "frame {k}");
        assert_eq!(b[0].points().count(), 478, "frame {k}: irises every frame");
        for i in 468..478 {
            let (p, q) = (a[0].point(i).unwrap(), b[0].point(i).unwrap());
            let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
            worst = worst.max(d);
        }
    }
    // Each eye is 19 to 23 px wide, its iris radius 5 px; running the model on every frame, the
    // iris centre's place between the eye corners itself moves by up to 0.7 px from frame to
    // frame. Irises left where the last frame put them would be 4.5 px off.
    assert!(worst <= 1.5, "an iris point {worst:.2} px off");
    let (every, alternate) = (every.stats(), alternate.stats());
    assert_eq!(every.iris_runs, 2 * FRAMES as u64);
    // Both eyes on the first frame (nothing kept yet), then one eye per frame.
    assert_eq!(alternate.iris_runs, FRAMES as u64 + 1);
    assert_eq!(alternate.landmark_runs, every.landmark_runs);
}
