//! The engine against tract on small ONNX graphs written here: every op and fusion the engine
//! has, including the ones the face models do not use, and the refusals.

use tract_onnx::pb::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto, tensor_shape_proto, type_proto,
};
use tract_onnx::prelude::*;

use super::kernels::tests::values;
use super::{Engine, Isa};

fn floats(name: &str, dims: &[i64], seed: u32) -> TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: values(n, seed),
        ..Default::default()
    }
}

fn ints(name: &str, data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![data.len() as i64],
        data_type: 7,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

enum A {
    Int(i64),
    Ints(Vec<i64>),
    Str(&'static str),
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<(&str, A)>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs
            .into_iter()
            .map(|(name, a)| {
                let mut p = AttributeProto { name: name.into(), ..Default::default() };
                match a {
                    A::Int(i) => (p.r#type, p.i) = (2, i),
                    A::Ints(v) => (p.r#type, p.ints) = (7, v),
                    A::Str(s) => (p.r#type, p.s) = (3, s.as_bytes().to_vec()),
                }
                p
            })
            .collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn model(input: [usize; 4], nodes: Vec<NodeProto>, inits: Vec<TensorProto>, outputs: &[&str]) -> ModelProto {
    ModelProto {
        ir_version: 6,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 11 }],
        graph: Some(GraphProto {
            node: nodes,
            initializer: inits,
            input: vec![value_info("x", &input.map(|d| d as i64))],
            output: outputs.iter().map(|o| ValueInfoProto { name: o.to_string(), ..Default::default() }).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `proto` with tract and with the engine on every instruction set, on the same input,
/// and checks every output agrees.
fn agree(proto: &ModelProto, input: [usize; 4], outputs: &[&str]) {
    let plan = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .unwrap()
        .with_input_fact(0, f32::fact(input).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = values(input.iter().product(), 99);
    let want = plan.run(tvec!(Tensor::from_shape(&input, &x).unwrap().into_tvalue())).unwrap();
    for isa in Isa::available() {
        let mut engine = Engine::build(proto, input, &[], isa).unwrap();
        let [_, c, h, w] = input;
        for _ in 0..2 {
            // Twice: buffers reused from the first run must not leak into the second.
            let p = engine.input();
            for ch in 0..c {
                for y in 0..h {
                    for xx in 0..w {
                        p.data[ch * p.plane + y * p.row + xx] = x[(ch * h + y) * w + xx];
                    }
                }
            }
            engine.run();
            for (name, want) in outputs.iter().zip(&want) {
                let want = want.as_plain_ram().unwrap().as_slice::<f32>().unwrap();
                let got = engine.output_named(name).unwrap();
                assert_eq!(got.len(), want.len(), "{name}");
                for (i, (a, b)) in got.iter().zip(want).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{isa:?} {name}[{i}]: {a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn every_op_and_fusion_agrees_with_tract() {
    let input = [1, 3, 10, 12];
    let nodes = vec![
        // A padded strided full convolution on the input, Relu fused.
        node(
            "Conv",
            &["x", "w1", "b1"],
            "a",
            vec![("strides", A::Ints(vec![2, 2])), ("pads", A::Ints(vec![1, 1, 1, 1]))],
        ),
        node("Relu", &["a"], "r", vec![]),
        // Depthwise 3x3 with PRelu fused.
        node("Conv", &["r", "wd", "bd"], "b", vec![("group", A::Int(8)), ("pads", A::Ints(vec![1, 1, 1, 1]))]),
        node("PRelu", &["b", "slope8"], "p", vec![]),
        // Pointwise with a residual that is zero-padded channels of a max pool, then PRelu.
        node("Conv", &["p", "w2", "b2"], "c", vec![]),
        node("MaxPool", &["r"], "m", vec![("kernel_shape", A::Ints(vec![3, 3])), ("auto_pad", A::Str("SAME_UPPER"))]),
        node("Pad", &["m", "pads"], "padded", vec![("mode", A::Str("constant"))]),
        node("Add", &["c", "padded"], "d", vec![]),
        node("PRelu", &["d", "slope12"], "e", vec![]),
        // Unfused: an Add of a padded view and a map (copied to plain first), a lone Relu.
        node("Add", &["padded", "e"], "f", vec![]),
        node("Relu", &["f"], "g", vec![]),
        // A 5x5 depthwise, stride 2, asymmetric padding, then a VALID max pool.
        node(
            "Conv",
            &["g", "wd5"],
            "h",
            vec![("group", A::Int(12)), ("strides", A::Ints(vec![2, 2])), ("pads", A::Ints(vec![1, 2, 2, 1]))],
        ),
        node("MaxPool", &["h"], "hp", vec![("kernel_shape", A::Ints(vec![2, 2])), ("strides", A::Ints(vec![2, 2]))]),
        // A 2x2 stride-2 full convolution reading its NHWC input in place.
        node("Conv", &["g", "w22"], "k", vec![("strides", A::Ints(vec![2, 2]))]),
        // Outputs the way the detector makes them.
        node("Transpose", &["e"], "t", vec![("perm", A::Ints(vec![0, 2, 3, 1]))]),
        node("Reshape", &["t", "shape"], "t2", vec![]),
        node("Reshape", &["g", "shape"], "g2", vec![]),
        node("Concat", &["t2", "g2"], "cat", vec![("axis", A::Int(1))]),
    ];
    let inits = vec![
        floats("w1", &[8, 3, 3, 3], 1),
        floats("b1", &[8], 2),
        floats("wd", &[8, 1, 3, 3], 3),
        floats("bd", &[8], 4),
        floats("slope8", &[8, 1, 1], 5),
        floats("w2", &[12, 8, 1, 1], 6),
        floats("b2", &[12], 7),
        ints("pads", &[0, 0, 0, 0, 0, 4, 0, 0]),
        floats("slope12", &[1, 12, 1, 1], 8),
        floats("wd5", &[12, 1, 5, 5], 9),
        floats("w22", &[20, 12, 2, 2], 10),
        ints("shape", &[1, -1, 4]),
    ];
    let outputs = ["cat", "hp", "k", "e"];
    agree(&model(input, nodes, inits, &outputs), input, &outputs);
}

#[test]
fn unsupported_graphs_are_refused_with_the_reason() {
    let input = [1, 3, 8, 8];
    let refused = |nodes: Vec<NodeProto>, inits: Vec<TensorProto>, what: &str| {
        let proto = model(input, nodes, inits, &["y"]);
        let err = Engine::build(&proto, input, &[], Isa::Portable).unwrap_err();
        assert!(err.contains(what), "{err}");
    };
    refused(vec![node("Sigmoid", &["x"], "y", vec![])], vec![], "op Sigmoid");
    refused(
        vec![node("Conv", &["x", "w"], "y", vec![("dilations", A::Ints(vec![2, 2]))])],
        vec![floats("w", &[4, 3, 3, 3], 1)],
        "dilation",
    );
    refused(
        vec![node("Conv", &["x", "w"], "y", vec![("group", A::Int(3))])],
        vec![floats("w", &[6, 1, 3, 3], 1)],
        "group 3",
    );
    // Slopes of shape [C] broadcast along the width, not per channel.
    refused(
        vec![node("Conv", &["x", "w"], "c", vec![]), node("PRelu", &["c", "s"], "y", vec![])],
        vec![floats("w", &[8, 3, 1, 1], 1), floats("s", &[8], 2)],
        "slopes of shape [8] for 8 channels",
    );
    refused(vec![node("Pad", &["x", "pads"], "y", vec![])], vec![ints("pads", &[0, 0, 1, 1, 0, 0, 1, 1])], "pads");
    // The model's real input size is checked too: a window wholly in the padding.
    refused(
        vec![node("Conv", &["x", "w"], "y", vec![("pads", A::Ints(vec![0, 0, 9, 0]))])],
        vec![floats("w", &[4, 3, 1, 1], 1)],
        "padding",
    );
    let proto = model(input, vec![node("Relu", &["x"], "y", vec![])], vec![], &["y"]);
    assert!(Engine::build(&proto, input, &["z"], Isa::Portable).unwrap_err().contains("no output named z"));
}
