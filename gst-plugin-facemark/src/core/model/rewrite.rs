//! Rewrites of a parsed model before tract builds it: PRelu as cheaper element-wise ops, and
//! only the outputs asked for.

use tract_onnx::prelude::*;

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

/// Makes the outputs named in `keep` (all when empty) the model's only outputs.
pub(super) fn keep_outputs(proto: &mut tract_onnx::pb::ModelProto, keep: &[&str]) -> TractResult<()> {
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
