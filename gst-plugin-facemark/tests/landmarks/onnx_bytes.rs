//! Just enough protobuf encoding to write small ONNX models by hand, hostile ones included (no
//! dependency of the crate encodes protobuf). Field numbers are those of onnx.proto.

pub const FLOAT: i64 = 1;
pub const INT64: i64 = 7;
/// AttributeProto.AttributeType INT and TENSOR.
const ATTRIBUTE_INT: i64 = 2;
const ATTRIBUTE_TENSOR: i64 = 4;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (wire type 0).
fn int(out: &mut Vec<u8>, field: u64, v: i64) {
    varint(out, field << 3);
    varint(out, v as u64);
}

/// A length-delimited field (wire type 2): bytes, a string or a message.
fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// A TensorProto: dims (1), data_type (2), name (8), raw_data (9).
pub fn tensor(name: &str, data_type: i64, dims: &[i64], raw: &[u8]) -> Vec<u8> {
    let mut t = vec![];
    for &d in dims {
        int(&mut t, 1, d);
    }
    int(&mut t, 2, data_type);
    bytes(&mut t, 8, name.as_bytes());
    if !raw.is_empty() {
        bytes(&mut t, 9, raw);
    }
    t
}

/// An INT64 tensor holding `values`.
pub fn int64s(name: &str, values: &[i64]) -> Vec<u8> {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, INT64, &[values.len() as i64], &raw)
}

/// A NodeProto: input (1), output (2), name (3), op_type (4), attribute (5).
pub fn node(op: &str, inputs: &[&str], output: &str, attributes: &[Vec<u8>]) -> Vec<u8> {
    let mut n = vec![];
    for i in inputs {
        bytes(&mut n, 1, i.as_bytes());
    }
    bytes(&mut n, 2, output.as_bytes());
    bytes(&mut n, 3, output.as_bytes());
    bytes(&mut n, 4, op.as_bytes());
    for a in attributes {
        bytes(&mut n, 5, a);
    }
    n
}

/// An AttributeProto (name 1, i 3, type 20) holding an integer.
pub fn int_attribute(name: &str, value: i64) -> Vec<u8> {
    let mut a = vec![];
    bytes(&mut a, 1, name.as_bytes());
    int(&mut a, 3, value);
    int(&mut a, 20, ATTRIBUTE_INT);
    a
}

/// An AttributeProto (name 1, t 5, type 20) holding a tensor.
pub fn tensor_attribute(name: &str, tensor: Vec<u8>) -> Vec<u8> {
    let mut a = vec![];
    bytes(&mut a, 1, name.as_bytes());
    bytes(&mut a, 5, &tensor);
    int(&mut a, 20, ATTRIBUTE_TENSOR);
    a
}

/// A ValueInfoProto (name 1, type 2) of a float tensor: TypeProto.tensor_type (1) with
/// elem_type (1) and, when given, shape (2), whose dims (1) hold dim_value (1).
fn float_value(name: &str, dims: Option<&[i64]>) -> Vec<u8> {
    let mut tensor_type = vec![];
    int(&mut tensor_type, 1, FLOAT);
    if let Some(dims) = dims {
        let mut shape = vec![];
        for &d in dims {
            let mut dim = vec![];
            int(&mut dim, 1, d);
            bytes(&mut shape, 1, &dim);
        }
        bytes(&mut tensor_type, 2, &shape);
    }
    let mut ty = vec![];
    bytes(&mut ty, 1, &tensor_type);
    let mut v = vec![];
    bytes(&mut v, 1, name.as_bytes());
    bytes(&mut v, 2, &ty);
    v
}

/// A ModelProto (ir_version 1, graph 7, opset_import 8 at opset 13) whose graph (node 1,
/// name 2, initializer 5, input 11, output 12) reads the float input `x` [1, 3, 128, 128]
/// and has the output `y`.
pub fn model(nodes: &[Vec<u8>], initializers: &[Vec<u8>]) -> Vec<u8> {
    let mut g = vec![];
    for n in nodes {
        bytes(&mut g, 1, n);
    }
    bytes(&mut g, 2, b"handmade");
    for t in initializers {
        bytes(&mut g, 5, t);
    }
    bytes(&mut g, 11, &float_value("x", Some(&[1, 3, 128, 128])));
    bytes(&mut g, 12, &float_value("y", None));
    let mut opset = vec![];
    bytes(&mut opset, 1, b"");
    int(&mut opset, 2, 13);
    let mut m = vec![];
    int(&mut m, 1, 7);
    bytes(&mut m, 7, &g);
    bytes(&mut m, 8, &opset);
    m
}
