//! The checks that refuse hostile or broken model files before they cost time or memory: what
//! is read from disk, the ops and constant tensors of the graph, the sizes of its tensors, and
//! negative pads.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use tract_onnx::pb::{ModelProto, TensorProto, tensor_proto::DataType};
use tract_onnx::prelude::*;

use super::{MAX_MODEL_BYTES, MAX_TENSOR_VALUES, MAX_TOTAL_VALUES, MODEL_OPS};

/// Reads a model file, refusing anything but a regular file (opening a named pipe would block
/// until something writes to it, a device may never end) and files past [`MAX_MODEL_BYTES`].
pub(super) fn read_model_file(path: &Path) -> Result<Vec<u8>, String> {
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
pub(super) fn check_model(proto: &ModelProto) -> Result<(), String> {
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
pub(super) fn check_tensor_sizes(model: &TypedModel) -> TractResult<()> {
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
pub(super) fn refuse_negative_pads(proto: &tract_onnx::pb::ModelProto) -> TractResult<()> {
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
