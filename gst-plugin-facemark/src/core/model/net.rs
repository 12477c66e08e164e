//! [`Net`]: one model loaded (checked, then built for the fused engine or tract), run frame
//! after frame.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::checks::{check_model, check_tensor_sizes, read_model_file, refuse_negative_pads};
use super::rewrite::{keep_outputs, rewrite_prelu};
use super::{MAX_MODEL_BYTES, ModelError, Runtime};
use crate::core::cnn;
use crate::core::image::Planes;

/// tract's optimised plan with its own input tensor, reused frame after frame.
struct TractNet {
    /// Holds the plan it runs.
    state: TypedSimpleState,
    /// Kept shared with tract only for the duration of a run, so it can be refilled in place.
    input: Arc<Tensor>,
    /// Output slots in model order, kept until the next run.
    outputs: TVec<TValue>,
}

enum Backend {
    Fused(cnn::Engine),
    Tract(TractNet),
}

/// One model ready to run on a fixed `[1, channels, size, size]` input (an RGB image, or a
/// feature map for the attention model's heads).
pub struct Net {
    backend: Backend,
    /// Why the fused engine does not run this model, when it does not.
    fallback: Option<String>,
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net").field("runtime", &self.runtime()).finish()
    }
}

/// Where a model's bytes come from.
enum Source<'a> {
    Path(&'a Path),
    /// The bytes, with the path that names them in errors.
    Bytes(&'a Path, &'a [u8]),
}

impl Source<'_> {
    fn path(&self) -> &Path {
        match self {
            Source::Path(p) | Source::Bytes(p, _) => p,
        }
    }
}

impl Net {
    /// Loads `path` for a fixed `[1, 3, size, size]` f32 input, to run on `runtime`, and checks
    /// that it runs and produces outputs with the element counts in `expect_outputs` (in some
    /// order).
    pub fn load_with(path: &Path, size: usize, expect_outputs: &[usize], runtime: Runtime) -> Result<Net, ModelError> {
        Self::build(Source::Path(path), [3, size, size], &[], expect_outputs, runtime)
    }

    /// [`Net::load_with`] for a model whose input is `channels` planes of `size` x `size`.
    pub fn load_planes(
        path: &Path,
        channels: usize,
        size: usize,
        expect_outputs: &[usize],
        runtime: Runtime,
    ) -> Result<Net, ModelError> {
        Self::build(Source::Path(path), [channels, size, size], &[], expect_outputs, runtime)
    }

    /// [`Net::load_with`] (auto runtime) from the bytes of a model file; `name` only names it in
    /// errors.
    pub fn from_bytes(name: &Path, bytes: &[u8], size: usize, expect_outputs: &[usize]) -> Result<Net, ModelError> {
        Self::build(Source::Bytes(name, bytes), [3, size, size], &[], expect_outputs, Runtime::Auto)
    }

    /// [`Net::load_with`] keeping only the outputs named in `keep`: the layers that only feed
    /// the others are not run.
    pub fn load_selected(
        path: &Path,
        size: usize,
        keep: &[&str],
        expect_outputs: &[usize],
        runtime: Runtime,
    ) -> Result<Net, ModelError> {
        Self::build(Source::Path(path), [3, size, size], keep, expect_outputs, runtime)
    }

    /// The same model ready to run beside this one: its weights (the fused engine's steps,
    /// tract's plan) shared, its buffers its own. Nothing is read or checked again.
    pub fn instance(&self) -> TractResult<Net> {
        let backend = match &self.backend {
            Backend::Fused(e) => Backend::Fused(e.instance()),
            Backend::Tract(t) => Backend::Tract(TractNet {
                state: TypedSimpleState::new(t.state.plan())?,
                input: Arc::new(t.input.deep_clone()),
                outputs: tvec!(),
            }),
        };
        Ok(Net { backend, fallback: self.fallback.clone() })
    }

    /// What runs this model: `fused (Avx512)`, or `tract` with the reason.
    pub fn runtime(&self) -> String {
        match (&self.backend, &self.fallback) {
            (Backend::Fused(e), _) => format!("fused ({:?})", e.isa()),
            (Backend::Tract(_), Some(why)) => format!("tract ({why})"),
            (Backend::Tract(_), None) => "tract".into(),
        }
    }

    fn build(
        source: Source,
        [channels, height, width]: [usize; 3],
        keep: &[&str],
        expect_outputs: &[usize],
        runtime: Runtime,
    ) -> Result<Net, ModelError> {
        let path = source.path().to_owned();
        let err = |reason: String| ModelError { path: path.clone(), reason };
        if let Source::Path(p) = source
            && !p.exists()
        {
            return Err(err(if p.parent().is_some_and(|p| !p.exists()) {
                "the model folder does not exist".into()
            } else {
                "the file does not exist".into()
            }));
        }
        let read;
        let bytes = match source {
            Source::Bytes(_, b) => b,
            Source::Path(p) => {
                read = read_model_file(p).map_err(err)?;
                &read
            }
        };
        if bytes.len() as u64 > MAX_MODEL_BYTES {
            return Err(err(format!(
                "{} bytes, larger than any face model ({MAX_MODEL_BYTES} bytes at most)",
                bytes.len()
            )));
        }
        // Parsers report malformed files as errors; the catch_unwind is a last line of defence
        // so that a hostile file can never take the pipeline down.
        let built = std::panic::catch_unwind(|| -> TractResult<(Backend, Option<String>)> {
            let onnx = tract_onnx::onnx();
            let mut proto = onnx.proto_model_for_read(&mut &bytes[..])?;
            check_model(&proto).map_err(TractError::msg)?;
            let mut fallback = None;
            if runtime == Runtime::Auto {
                match cnn::Engine::build(&proto, [1, channels, height, width], keep, cnn::Isa::chosen()) {
                    Ok(engine) => return Ok((Backend::Fused(engine), None)),
                    Err(why) => fallback = Some(why),
                }
            }
            if runtime != Runtime::TractAsIs {
                rewrite_prelu(&mut proto);
            }
            keep_outputs(&mut proto, keep)?;
            refuse_negative_pads(&proto)?;
            let model = onnx
                .model_for_proto_model(&proto)?
                .with_input_fact(0, f32::fact([1, channels, height, width]).into())?
                .into_typed()?;
            check_tensor_sizes(&model)?;
            let plan = model.into_optimized()?.into_runnable()?;
            let state = TypedSimpleState::new(&plan)?;
            let input = Arc::new(Tensor::zero::<f32>(&[1, channels, height, width])?);
            let tract = TractNet { state, input, outputs: tvec!() };
            Ok((Backend::Tract(tract), fallback))
        });
        let (backend, fallback) = match built {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(err(format!("not a usable ONNX model ({e:#})"))),
            Err(_) => return Err(err("not a usable ONNX model (the parser failed)".into())),
        };
        let mut net = Net { backend, fallback };
        // A parsable but corrupt model may still fail (or panic) when it runs.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.run())) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(err(format!("test run failed: {e:#}"))),
            Err(_) => return Err(err("test run failed (the runtime panicked)".into())),
        }
        let mut got: Vec<usize> = match &net.backend {
            Backend::Fused(e) => e.outputs().map(|o| o.1).collect(),
            Backend::Tract(t) => t.outputs.iter().map(|o| o.len()).collect(),
        };
        let mut want = expect_outputs.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            return Err(err(format!(
                "unexpected outputs (element counts {got:?}, expected {want:?}): not the right model"
            )));
        }
        Ok(net)
    }

    /// The input (`[1, channels, size, size]`) to fill before [`Net::run`], and where each value goes.
    pub fn input(&mut self) -> Planes<'_> {
        match &mut self.backend {
            Backend::Fused(e) => e.input(),
            Backend::Tract(t) => {
                if Arc::get_mut(&mut t.input).is_none() {
                    // tract still holds a reference (should not happen): start a fresh tensor.
                    t.input = Arc::new((*t.input).clone());
                }
                let input = Arc::get_mut(&mut t.input).expect("unique input tensor");
                assert_eq!(input.datum_type(), f32::datum_type());
                let (h, w) = (input.shape()[2], input.shape()[3]);
                // SAFETY: the tensor was created by Tensor::zero::<f32> with plain host storage
                // and the datum type is checked just above.
                Planes { data: unsafe { input.as_slice_mut_unchecked::<f32>() }, plane: h * w, row: w }
            }
        }
    }

    /// Runs the model on the image written through [`Net::input`]; read the results with
    /// [`Net::output`]. Errors come from tract (the fused engine does not fail).
    pub fn run(&mut self) -> TractResult<()> {
        match &mut self.backend {
            Backend::Fused(e) => e.run(),
            Backend::Tract(t) => {
                t.outputs.clear();
                let input = t.input.clone().into_tvalue();
                t.outputs = t.state.run(tvec!(input))?;
            }
        }
        Ok(())
    }

    /// Runs the model `runs` times timing every step; returns (name, ms per run): for the fused
    /// engine each step in order, for tract the totals by op kind, slowest first. For the
    /// benchmark's FACEMARK_PROFILE=1.
    pub fn profile(&mut self, runs: usize) -> TractResult<Vec<(String, f64)>> {
        use std::collections::HashMap;
        use std::time::Instant;
        let t = match &mut self.backend {
            Backend::Fused(e) => return Ok(e.profile(runs)),
            Backend::Tract(t) => t,
        };
        let mut by_op: HashMap<String, f64> = HashMap::new();
        for _ in 0..runs {
            let input = t.input.clone().into_tvalue();
            t.state.run_plan_with_eval(tvec!(input), |ctx, op_state, node, inputs| {
                let t = Instant::now();
                let r = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                *by_op.entry(node.op().name().to_string()).or_default() += t.elapsed().as_secs_f64();
                r
            })?;
        }
        let mut v: Vec<(String, f64)> = by_op.into_iter().map(|(k, t)| (k, t * 1e3 / runs as f64)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(v)
    }

    /// The output with `len` elements from the last run.
    pub fn output(&self, len: usize) -> &[f32] {
        match &self.backend {
            Backend::Fused(e) => e.output(len).unwrap_or(&[]),
            Backend::Tract(t) => t
                .outputs
                .iter()
                .find(|o| o.len() == len)
                .and_then(|o| o.as_plain_ram()?.as_slice::<f32>().ok())
                .unwrap_or(&[]),
        }
    }
}
