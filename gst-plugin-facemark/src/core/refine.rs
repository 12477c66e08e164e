//! The points after the mesh: MediaPipe's attention heads (lips, eyes, irises: 478 points, what
//! FaceMesh gives with `refine_landmarks`) on the trunk's feature map, or the older iris model on
//! crops of the frame (468 mesh points + 10 iris points), whichever is installed.

use std::time::Instant;

use tract_onnx::prelude::TractResult;

use super::attention::{self, Crop, EYE_OUTPUT_LEN, EYES, LIPS, NUM_POINTS, Region};
use super::image::{Frame, sample_roi};
use super::iris;
use super::landmarks::{self, NUM_LANDMARKS};
use super::model::Net;
use super::tracker::{Face, Stats};

/// An eye model's last raw output, kept for the frames it skips: the attention eye head's
/// (contour, then iris, in quarter crop pixels), or the iris model's ([`iris::OUTPUT_LEN`] values,
/// first).
pub type EyeOutput = [f32; EYE_OUTPUT_LEN];

/// What adds points to the mesh.
// One per FaceMarker, never moved on a per-frame path: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Refiner {
    /// No refinement installed: 468 points.
    None,
    /// The iris model (`iris_landmark.onnx`), run on each eye's crop of the frame.
    Iris(Net),
    /// The attention model's heads; the landmark model is then its trunk.
    Attention(Heads),
}

/// The attention model's heads, in the order lips, right eye, left eye.
pub struct Heads {
    nets: [Net; 3],
    /// The 478 points in crop pixels.
    points: Box<[[f32; 3]; NUM_POINTS]>,
}

impl Heads {
    /// The heads loaded by [`crate::core::model::load_models`].
    pub fn new(nets: [Net; 3]) -> Heads {
        Heads { nets, points: Box::new([[0.0; 3]; NUM_POINTS]) }
    }

    /// The same heads ready to run beside these (see [`Net::instance`]).
    pub fn instance(&self) -> TractResult<Heads> {
        let [lips, right, left] = &self.nets;
        Ok(Heads::new([lips.instance()?, right.instance()?, left.instance()?]))
    }

    /// The regions of [`Heads::nets`], in order.
    pub const REGIONS: [&Region; 3] = [&LIPS, EYES[0], EYES[1]];

    /// The 478 points (192-px crop pixels) of the `trunk`'s last run: runs the lips head, and the
    /// eye heads that are `due` or have no output in `kept` (where their outputs are kept); an
    /// eye head that does not run places its kept output on this run's mesh. An eye without
    /// output leaves its iris at zero.
    pub fn run(
        &mut self,
        trunk: &Net,
        kept: &mut [Option<EyeOutput>; 2],
        due: [bool; 2],
        stats: &mut Stats,
    ) -> TractResult<&[[f32; 3]; NUM_POINTS]> {
        let mesh = trunk.output(NUM_LANDMARKS * 3);
        let map = trunk.output(attention::MAP_LEN);
        let crops: [Crop; 3] = Heads::REGIONS.map(|r| r.crop(mesh));
        let t = Instant::now();
        let [lips_net, eye_nets @ ..] = &mut self.nets;
        crops[0].sample(map, lips_net.input());
        lips_net.run()?;
        for (side, net) in eye_nets.iter_mut().enumerate() {
            if !runs(&kept[side], due[side]) {
                continue;
            }
            crops[side + 1].sample(map, net.input());
            net.run()?;
            stats.iris_runs += 1;
            let contour = net.output(2 * EYES[side].indices.len());
            let iris = net.output(2 * attention::IRIS_POINTS);
            let mut output = [0.0; EYE_OUTPUT_LEN];
            output[..contour.len()].copy_from_slice(contour);
            output[contour.len()..][..iris.len()].copy_from_slice(iris);
            kept[side] = Some(output);
        }
        stats.iris_seconds += t.elapsed().as_secs_f64();
        let lips = lips_net.output(2 * LIPS.indices.len());
        let [right, left] = kept;
        attention::assemble(
            mesh,
            &[
                (&LIPS, Some(lips), crops[0]),
                (EYES[0], right.as_ref().map(|o| &o[..]), crops[1]),
                (EYES[1], left.as_ref().map(|o| &o[..]), crops[2]),
            ],
            &mut self.points[..],
        );
        Ok(&self.points)
    }
}

/// Whether an eye's model runs this frame: when it is `due`, or has no output to reuse.
fn runs(kept: &Option<EyeOutput>, due: bool) -> bool {
    due || kept.is_none()
}

/// Whether each eye (right, left) of `face` is due this frame.
fn due(face: &Face, interval: u32) -> [bool; 2] {
    [0, 1].map(|side| iris::due(face.tracked_frames, side, interval))
}

impl Refiner {
    /// The same refiner ready to run beside this one (see [`Net::instance`]).
    pub fn instance(&self) -> TractResult<Refiner> {
        Ok(match self {
            Refiner::None => Refiner::None,
            Refiner::Iris(net) => Refiner::Iris(net.instance()?),
            Refiner::Attention(heads) => Refiner::Attention(heads.instance()?),
        })
    }

    /// What runs the refinement, for [`crate::core::tracker::FaceMarker::runtimes`].
    pub fn runtime(&self) -> Option<String> {
        match self {
            Refiner::None => None,
            Refiner::Iris(net) => Some(format!("iris: {}", net.runtime())),
            Refiner::Attention(h) => Some(format!("attention heads: {}", h.nets[0].runtime())),
        }
    }

    /// Refines `face` (its irises unset), whose mesh the landmark model (`mesh_net`, just run on
    /// `face.roi`) gave: the irises (and with the attention heads the lips and eyes), each eye every
    /// `iris_interval` frames of a tracked face.
    pub fn refine(
        &mut self,
        frame: &Frame,
        mesh_net: &Net,
        face: &mut Face,
        iris_interval: u32,
        stats: &mut Stats,
    ) -> TractResult<()> {
        match self {
            Refiner::None => Ok(()),
            Refiner::Iris(net) => refine_irises(net, frame, face, iris_interval, stats),
            Refiner::Attention(heads) => refine_with_heads(heads, mesh_net, face, iris_interval, stats),
        }
    }
}

/// The older iris model on each eye's crop of the frame.
fn refine_irises(net: &mut Net, frame: &Frame, face: &mut Face, interval: u32, stats: &mut Stats) -> TractResult<()> {
    let due = due(face, interval);
    for (side, eye) in [iris::RIGHT_EYE, iris::LEFT_EYE].into_iter().enumerate() {
        let roi = iris::eye_roi(&face.landmarks, eye);
        if runs(&face.eye_outputs[side], due[side]) {
            // The model knows right eyes: the left one is sampled mirrored.
            sample_roi(frame, &roi, iris::INPUT_SIZE, eye.2, 1.0 / 255.0, 0.0, net.input());
            let t = Instant::now();
            net.run()?;
            stats.iris_seconds += t.elapsed().as_secs_f64();
            stats.iris_runs += 1;
            let output = net.output(iris::OUTPUT_LEN);
            face.eye_outputs[side] = (output.len() == iris::OUTPUT_LEN).then(|| {
                let mut kept = [0.0; EYE_OUTPUT_LEN];
                kept[..iris::OUTPUT_LEN].copy_from_slice(output);
                kept
            });
        }
        let Some(output) = &face.eye_outputs[side] else { continue };
        let mut pts = [[0.0; 3]; iris::IRIS_POINTS];
        iris::decode(&output[..iris::OUTPUT_LEN], &roi, eye.2, &mut pts);
        if eye.2 {
            face.left_iris = Some(pts);
        } else {
            face.right_iris = Some(pts);
        }
    }
    Ok(())
}

/// The attention heads on crops of the trunk's feature map: the lips every frame, each eye
/// when due (else its last output, placed by this frame's mesh).
fn refine_with_heads(
    heads: &mut Heads,
    trunk: &Net,
    face: &mut Face,
    interval: u32,
    stats: &mut Stats,
) -> TractResult<()> {
    let due = due(face, interval);
    let points = heads.run(trunk, &mut face.eye_outputs, due, stats)?;
    landmarks::decode(points[..NUM_LANDMARKS].as_flattened(), &face.roi, &mut face.landmarks);
    // An eye's iris is there once its head has run.
    let iris = |side: usize| -> Option<[[f32; 3]; attention::IRIS_POINTS]> {
        let first = EYES[side].iris?;
        face.eye_outputs[side]?;
        let mut iris = [[0.0; 3]; attention::IRIS_POINTS];
        landmarks::decode(points[first..][..attention::IRIS_POINTS].as_flattened(), &face.roi, &mut iris);
        Some(iris)
    };
    (face.right_iris, face.left_iris) = (iris(0), iris(1));
    Ok(())
}
