//! Loading and running the two ONNX models with tract.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::pb::{ModelProto, TensorProto, tensor_proto::DataType};
use tract_onnx::prelude::*;

use super::cnn;
use super::image::Planes;

pub const DETECTOR_FILE: &str = "face_detection_short_range.onnx";
pub const LANDMARK_FILE: &str = "face_landmark.onnx";
/// Optional: irises are added when this file is present.
pub const IRIS_FILE: &str = "iris_landmark.onnx";

/// What to tell users whose models are missing or broken.
pub const FIX_HINT: &str = "run scripts/fetch-models.sh (it installs the models into the default \
     model dir, or into the folder given as its argument) or point the model-dir property / \
     FACEMARK_MODEL_DIR at a folder holding them";

/// The largest model file read. The face models are 0.4 to 2.6 MB: this leaves room for far
/// bigger variants, while a wrong or hostile path (a disk image, an endless device) is refused
/// rather than read into memory.
const MAX_MODEL_BYTES: u64 = 256 << 20;

/// The most values one tensor of a model may hold, constant or computed, and all of them
/// together: the fused engine's bounds (see there why these values). The engines allocate what a
/// model's shapes ask for, and a small hostile file must not get to ask for gigabytes.
const MAX_TENSOR_VALUES: u64 = cnn::MAX_FLOATS as u64;
const MAX_TOTAL_VALUES: u64 = cnn::MAX_TOTAL_FLOATS as u64;

/// The ops a model may use: those of the face models (the ones the fused engine runs) and those
/// [`rewrite_prelu`] adds. tract knows many more, some of which allocate whatever values in the
/// file ask for while the model loads (ConstantOfShape, Expand, Tile, Range, Resize) or loop as
/// long as they say (Loop, Scan): none is needed, so hostile files do not get to use them.
const MODEL_OPS: &[&str] =
    &["Add", "Concat", "Constant", "Conv", "MaxPool", "Min", "Mul", "PRelu", "Pad", "Relu", "Reshape", "Transpose"];

/// The folder the element reads models from when `model-dir` is not set:
/// `$FACEMARK_MODEL_DIR` at run time, else `$FACEMARK_MODEL_DIR` as it was at build time, else
/// `$XDG_DATA_HOME/whipcast/models`, else `~/.local/share/whipcast/models`.
pub fn default_model_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FACEMARK_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = option_env!("FACEMARK_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("whipcast/models");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/whipcast/models")
}

/// A model that could not be loaded, with the path and the way to fix it.
#[derive(Debug, Clone)]
pub struct ModelError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load face model {}: {}; {}", self.path.display(), self.reason, FIX_HINT)
    }
}

impl std::error::Error for ModelError {}

/// Which inference engine runs the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// This crate's fused NHWC engine ([`super::cnn`]) when it supports every op of the model,
    /// else tract.
    #[default]
    Auto,
    /// tract's optimised plan (with PRelu rewritten, see [`rewrite_prelu`]).
    Tract,
    /// tract on the model as it is (no PRelu rewrite): the reference the others are tested
    /// against.
    TractAsIs,
}

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

/// One model ready to run on a fixed `[1, 3, size, size]` input.
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
        Self::build(Source::Path(path), size, &[], expect_outputs, runtime)
    }

    /// [`Net::load_with`] (auto runtime) from the bytes of a model file; `name` only names it in
    /// errors.
    pub fn from_bytes(name: &Path, bytes: &[u8], size: usize, expect_outputs: &[usize]) -> Result<Net, ModelError> {
        Self::build(Source::Bytes(name, bytes), size, &[], expect_outputs, Runtime::Auto)
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
        Self::build(Source::Path(path), size, keep, expect_outputs, runtime)
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
        size: usize,
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
                match cnn::Engine::build(&proto, [1, 3, size, size], keep, cnn::Isa::chosen()) {
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
                .with_input_fact(0, f32::fact([1, 3, size, size]).into())?
                .into_typed()?;
            check_tensor_sizes(&model)?;
            let plan = model.into_optimized()?.into_runnable()?;
            let state = TypedSimpleState::new(&plan)?;
            let input = Arc::new(Tensor::zero::<f32>(&[1, 3, size, size])?);
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

    /// The input image (`[1, 3, n, n]`) to fill before [`Net::run`], and where each value goes.
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
                let n = input.shape()[3];
                // SAFETY: the tensor was created by Tensor::zero::<f32> with plain host storage
                // and the datum type is checked just above.
                Planes::nchw(unsafe { input.as_slice_mut_unchecked::<f32>() }, n)
            }
        }
    }

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

/// Replaces every `PRelu(x, a)` node by `Relu(x) + Min(x, 0) * a`.
///
/// Same values, but tract 0.23 expands PRelu into a comparison and a select (`GT` + `Iff`) that
/// it cannot fuse and that took about half of the landmark and iris models' time; the
/// replacement runs as cheap element-wise kernels. Done on the parsed protobuf, so the model
/// files (and their checksums) stay as they are.
pub fn rewrite_prelu(proto: &mut tract_onnx::pb::ModelProto) {
    use tract_onnx::pb::{NodeProto, TensorProto};
    let Some(graph) = proto.graph.as_mut() else {
        return;
    };
    if !graph.node.iter().any(|n| n.op_type == "PRelu") {
        return;
    }
    let zero = "facemark.prelu.zero".to_string();
    graph.initializer.push(TensorProto {
        dims: vec![],
        data_type: 1, // FLOAT
        float_data: vec![0.0],
        name: zero.clone(),
        ..Default::default()
    });
    let node = |op: &str, input: Vec<String>, output: &str| NodeProto {
        op_type: op.into(),
        input,
        output: vec![output.to_string()],
        name: output.to_string(),
        ..Default::default()
    };
    let mut nodes = Vec::with_capacity(graph.node.len() * 2);
    for n in std::mem::take(&mut graph.node) {
        if n.op_type != "PRelu" || n.input.len() != 2 || n.output.len() != 1 {
            nodes.push(n);
            continue;
        }
        let (x, a, y) = (&n.input[0], &n.input[1], &n.output[0]);
        let (pos, neg, scaled) =
            (format!("{y}.facemark.pos"), format!("{y}.facemark.neg"), format!("{y}.facemark.scaled"));
        nodes.push(node("Relu", vec![x.clone()], &pos));
        nodes.push(node("Min", vec![x.clone(), zero.clone()], &neg));
        nodes.push(node("Mul", vec![neg.clone(), a.clone()], &scaled));
        nodes.push(NodeProto { name: n.name.clone(), ..node("Add", vec![pos, scaled], y) });
    }
    graph.node = nodes;
}

/// Reads a model file, refusing anything but a regular file (opening a named pipe would block
/// until something writes to it, a device may never end) and files past [`MAX_MODEL_BYTES`].
fn read_model_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let too_big = |len: u64| format!("{len} bytes, larger than any face model ({MAX_MODEL_BYTES} bytes at most)");
    if meta.len() > MAX_MODEL_BYTES {
        return Err(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open it ({e})"))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the bound tells a file that grew since the metadata was read.
    file.take(MAX_MODEL_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it ({e})"))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Refuses what no face model has and what would make loading allocate without bound: ops
/// outside [`MODEL_OPS`], constant tensors that are too large or hold fewer or more values than
/// their dims say, and nodes that compute on constants only (tract evaluates those while it
/// loads the model, and only afterwards looks at the size of the result).
fn check_model(proto: &ModelProto) -> Result<(), String> {
    let graph = proto.graph.as_ref().ok_or("the model has no graph")?;
    for t in &graph.initializer {
        check_tensor(t)?;
    }
    for node in &graph.node {
        if !["", "ai.onnx"].contains(&node.domain.as_str()) || !MODEL_OPS.contains(&node.op_type.as_str()) {
            return Err(format!(
                "node {:?} is a {} op (domain {:?}), which no face model uses",
                node.name, node.op_type, node.domain
            ));
        }
        for a in &node.attribute {
            a.t.iter().chain(&a.tensors).try_for_each(check_tensor)?;
        }
    }
    let constants: HashSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(graph.node.iter().filter(|n| n.op_type == "Constant").flat_map(|n| n.output.iter().map(String::as_str)))
        .collect();
    // Checking each node's direct inputs is enough: any computation on constants starts with
    // a node whose inputs are all constants.
    for node in graph.node.iter().filter(|n| n.op_type != "Constant") {
        let mut inputs = node.input.iter().filter(|i| !i.is_empty());
        if inputs.all(|i| constants.contains(i.as_str())) {
            return Err(format!(
                "node {:?} ({}) computes on constants only, which no face model does",
                node.name, node.op_type
            ));
        }
    }
    Ok(())
}

/// Refuses a constant tensor with more than [`MAX_TENSOR_VALUES`] values, or whose data does not
/// hold exactly the values its dims declare.
fn check_tensor(t: &TensorProto) -> Result<(), String> {
    let mut values: u64 = 1;
    for &d in &t.dims {
        let d = u64::try_from(d).map_err(|_| format!("tensor {:?} has a negative dimension ({d})", t.name))?;
        // Saturating: past the bound the exact count does not matter, and a zero still wins.
        values = values.saturating_mul(d);
    }
    if values > MAX_TENSOR_VALUES {
        return Err(format!(
            "tensor {:?} has dims {:?}: more than the {MAX_TENSOR_VALUES} values a model tensor \
             may hold",
            t.name, t.dims
        ));
    }
    // The size of a value in raw_data, and how many values the typed field holds.
    let (size, typed) = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) => (4, t.float_data.len()),
        Ok(DataType::Double) => (8, t.double_data.len()),
        Ok(DataType::Int64) => (8, t.int64_data.len()),
        Ok(DataType::Uint64) => (8, t.uint64_data.len()),
        Ok(DataType::Uint32) => (4, t.uint64_data.len()),
        Ok(DataType::Int32) => (4, t.int32_data.len()),
        Ok(DataType::Int16 | DataType::Uint16 | DataType::Float16) => (2, t.int32_data.len()),
        Ok(DataType::Int8 | DataType::Uint8 | DataType::Bool) => (1, t.int32_data.len()),
        _ => {
            return Err(format!("tensor {:?} has data type {}, which no face model uses", t.name, t.data_type));
        }
    };
    // tract reads raw_data when there is any, else the typed field.
    let held = if t.raw_data.is_empty() {
        typed as u64
    } else if t.raw_data.len().is_multiple_of(size) {
        (t.raw_data.len() / size) as u64
    } else {
        u64::MAX
    };
    if held != values {
        return Err(format!(
            "tensor {:?} has dims {:?} ({values} values) but its data holds {} bytes and {typed} \
             typed values",
            t.name,
            t.dims,
            t.raw_data.len()
        ));
    }
    Ok(())
}

/// Refuses a model (its input's shape set) with a tensor of more than [`MAX_TENSOR_VALUES`]
/// values or of a size the input's does not settle, or whose tensors hold more than
/// [`MAX_TOTAL_VALUES`] together: tract allocates them when the model runs.
fn check_tensor_sizes(model: &TypedModel) -> TractResult<()> {
    let mut total: u64 = 0;
    for node in &model.nodes {
        for output in &node.outputs {
            let shape = &output.fact.shape;
            let values =
                shape.as_concrete().and_then(|dims| dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)));
            let Some(values) = values.filter(|&v| v <= MAX_TENSOR_VALUES) else {
                return Err(TractError::msg(format!(
                    "node {:?} makes a tensor of shape {shape:?}, more than the \
                     {MAX_TENSOR_VALUES} values a model tensor may hold",
                    node.name
                )));
            };
            total = total.saturating_add(values);
        }
    }
    if total > MAX_TOTAL_VALUES {
        return Err(TractError::msg(format!(
            "the model's tensors hold {total} values together, more than the \
             {MAX_TOTAL_VALUES} allowed"
        )));
    }
    Ok(())
}

/// Refuses `Pad` nodes with negative pads (cropping). tract 0.23 asserts, rather than
/// returns an error, when one crops a tensor to a negative size (found by the
/// `facemark_model` fuzz target); none of the face models crops.
fn refuse_negative_pads(proto: &tract_onnx::pb::ModelProto) -> TractResult<()> {
    let Some(graph) = proto.graph.as_ref() else {
        return Ok(());
    };
    for node in graph.node.iter().filter(|n| n.op_type == "Pad") {
        let from_attribute = node.attribute.iter().filter(|a| a.name == "pads").flat_map(|a| a.ints.iter().copied());
        let from_input = node.input.get(1).into_iter().flat_map(|name| {
            graph.initializer.iter().filter(move |t| &t.name == name).flat_map(|t| {
                let raw = t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()));
                t.int64_data.iter().copied().chain(raw)
            })
        });
        if from_attribute.chain(from_input).any(|p| p < 0) {
            return Err(TractError::msg(format!("Pad node {:?} has negative pads", node.name)));
        }
    }
    Ok(())
}

/// Makes the outputs named in `keep` (all when empty) the model's only outputs.
fn keep_outputs(proto: &mut tract_onnx::pb::ModelProto, keep: &[&str]) -> TractResult<()> {
    let Some(graph) = proto.graph.as_mut().filter(|_| !keep.is_empty()) else {
        return Ok(());
    };
    for name in keep {
        if !graph.output.iter().any(|o| o.name == *name) {
            return Err(TractError::msg(format!("the model has no output named {name}")));
        }
    }
    graph.output.retain(|o| keep.contains(&o.name.as_str()));
    Ok(())
}

/// Loads the detector, the landmark model and (when its file exists) the iris model from `dir`.
pub fn load_models(dir: &Path, runtime: Runtime) -> Result<(Net, Net, Option<Net>), ModelError> {
    use super::{detector, iris, landmarks};
    if !dir.is_dir() {
        return Err(ModelError { path: dir.to_owned(), reason: "the model folder does not exist".into() });
    }
    let det = Net::load_with(
        &dir.join(DETECTOR_FILE),
        detector::INPUT_SIZE,
        &[detector::NUM_ANCHORS * detector::NUM_VALUES, detector::NUM_ANCHORS],
        runtime,
    )?;
    let lm =
        Net::load_with(&dir.join(LANDMARK_FILE), landmarks::INPUT_SIZE, &[landmarks::NUM_LANDMARKS * 3, 1], runtime)?;
    let iris_path = dir.join(IRIS_FILE);
    let iris = if iris_path.exists() {
        // The eye-contour output (71 points) is not used: only the iris head runs.
        Some(Net::load_selected(&iris_path, iris::INPUT_SIZE, &[iris::IRIS_OUTPUT], &[iris::OUTPUT_LEN], runtime)?)
    } else {
        None
    };
    Ok((det, lm, iris))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

    fn pad_model(pads: &[i64], as_attribute: bool) -> ModelProto {
        let mut node = NodeProto {
            op_type: "Pad".into(),
            name: "crop".into(),
            input: vec!["x".into()],
            output: vec!["y".into()],
            ..Default::default()
        };
        let mut initializer = vec![];
        if as_attribute {
            node.attribute.push(AttributeProto {
                name: "pads".into(),
                r#type: 7,
                ints: pads.to_vec(),
                ..Default::default()
            });
        } else {
            node.input.push("pads".into());
            initializer.push(TensorProto {
                name: "pads".into(),
                dims: vec![pads.len() as i64],
                data_type: 7,
                raw_data: pads.iter().flat_map(|p| p.to_le_bytes()).collect(),
                ..Default::default()
            });
        }
        ModelProto {
            graph: Some(GraphProto { node: vec![node], initializer, ..Default::default() }),
            ..Default::default()
        }
    }

    /// The input the fuzzer found: tract asserts on a crop to a negative size, so such models
    /// are refused before tract sees them.
    #[test]
    fn negative_pads_are_refused() {
        for as_attribute in [false, true] {
            let err = refuse_negative_pads(&pad_model(&[0, 0, -200, 0, 0, 0, 0, 0], as_attribute));
            assert!(err.unwrap_err().to_string().contains("negative pads"));
            assert!(refuse_negative_pads(&pad_model(&[0, 0, 1, 1, 0, 4, 1, 1], as_attribute)).is_ok());
        }
    }
}
