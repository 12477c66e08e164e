//! Reading what the engine needs out of an ONNX graph (as parsed by tract-onnx): constant
//! tensors, node attributes, and which nodes the wanted outputs depend on.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

/// A constant: an initializer or a `Constant` node's value.
#[derive(Clone, Debug)]
pub enum Const {
    /// Float values (weights, biases, slopes), row-major in the tensor's `dims`.
    F32 {
        /// The tensor's shape.
        dims: Vec<usize>,
        /// Its values, row-major.
        data: Vec<f32>,
    },
    /// Integer values (a Reshape's shape, a Pad's pads), flattened.
    I64 {
        /// Its values.
        data: Vec<i64>,
    },
}

const FLOAT: i32 = 1;
const INT64: i32 = 7;

fn tensor(t: &TensorProto) -> Result<Const, String> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor {} has dimension {d}", t.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("tensor {} has dims {dims:?}: too many values", t.name))?;
    let raw = |size: usize| -> Result<Option<&[u8]>, String> {
        if t.raw_data.is_empty() {
            return Ok(None);
        }
        if n.checked_mul(size) != Some(t.raw_data.len()) {
            return Err(format!("tensor {} holds {} bytes for {n} values", t.name, t.raw_data.len()));
        }
        Ok(Some(&t.raw_data))
    };
    let c = match t.data_type {
        FLOAT => Const::F32 {
            data: match raw(4)? {
                Some(b) => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                None => t.float_data.clone(),
            },
            dims,
        },
        INT64 => Const::I64 {
            data: match raw(8)? {
                Some(b) => b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
                None => t.int64_data.clone(),
            },
        },
        other => return Err(format!("tensor {} has data type {other}", t.name)),
    };
    let len = match &c {
        Const::F32 { data, .. } => data.len(),
        Const::I64 { data, .. } => data.len(),
    };
    if len != n {
        return Err(format!("tensor {} holds {len} values for {n}", t.name));
    }
    Ok(c)
}

/// The graph's constants by name: initializers and the outputs of `Constant` nodes.
pub fn constants(graph: &GraphProto) -> Result<HashMap<String, Const>, String> {
    let mut out = HashMap::new();
    for t in &graph.initializer {
        // Constants that are never read (or of types the engine has no use for) only matter
        // once a node uses them; keep the error for then.
        if let Ok(c) = tensor(t) {
            out.insert(t.name.clone(), c);
        }
    }
    for n in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(name), Some(t)) = (n.output.first(), n.attribute.iter().find_map(|a| a.t.as_ref())) {
            out.insert(name.clone(), tensor(t)?);
        }
    }
    Ok(out)
}

/// The indices of the nodes the `outputs` depend on, in graph order.
pub fn needed_nodes(graph: &GraphProto, outputs: &[String]) -> Vec<usize> {
    let producer: HashMap<&str, usize> =
        graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    let mut needed = HashSet::new();
    let mut stack: Vec<&str> = outputs.iter().map(String::as_str).collect();
    while let Some(name) = stack.pop() {
        if let Some(&i) = producer.get(name)
            && needed.insert(i)
        {
            stack.extend(graph.node[i].input.iter().map(String::as_str).filter(|s| !s.is_empty()));
        }
    }
    let mut v: Vec<usize> = needed.into_iter().collect();
    v.sort_unstable();
    v
}

/// Attribute access for one node.
pub struct Attrs<'a>(pub &'a NodeProto);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&tract_onnx::pb::AttributeProto> {
        self.0.attribute.iter().find(|a| a.name == name)
    }

    /// Integer attribute `name`, or `default` when the node has none.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    /// Integer list attribute `name` (e.g. `pads`, `kernel_shape`), `None` when absent.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    /// String attribute `name` (e.g. `auto_pad`), decoded lossily as UTF-8; `None` when absent.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// Attribute names, to refuse nodes with ones the engine does not know.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.attribute.iter().map(|a| a.name.as_str())
    }
}

/// Window geometry of a Conv or MaxPool along one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Output size along the axis, in pixels.
    pub out: usize,
    /// Padding before the first input pixel, in pixels.
    pub pad_begin: usize,
}

/// Larger strides are refused (they only make sense on inputs this engine never sees, and
/// keep the buffer arithmetic far from overflowing).
pub const MAX_STRIDE: usize = 64;

/// Output size and leading padding from ONNX's `auto_pad` / `pads` rules (no dilation).
pub fn window(auto_pad: &str, input: usize, k: usize, stride: usize, pads: (usize, usize)) -> Result<Axis, String> {
    if k == 0 || stride == 0 {
        return Err("zero kernel or stride".into());
    }
    if stride > MAX_STRIDE {
        return Err(format!("stride {stride} (at most {MAX_STRIDE})"));
    }
    if pads.0 >= k || pads.1 >= k {
        return Err("padding as wide as the window".into());
    }
    let axis = match auto_pad {
        "" | "NOTSET" => {
            let padded = input.checked_add(pads.0).and_then(|p| p.checked_add(pads.1)).ok_or("padding too large")?;
            if padded < k {
                return Err("window larger than the padded input".into());
            }
            Axis { out: (padded - k) / stride + 1, pad_begin: pads.0 }
        }
        "VALID" => {
            if input < k {
                return Err("window larger than the input".into());
            }
            Axis { out: (input - k) / stride + 1, pad_begin: 0 }
        }
        "SAME_UPPER" | "SAME_LOWER" => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + k).saturating_sub(input);
            Axis { out, pad_begin: if auto_pad == "SAME_UPPER" { total / 2 } else { total - total / 2 } }
        }
        other => return Err(format!("auto_pad {other}")),
    };
    // Every window must overlap the input (the kernels rely on it).
    if axis.out == 0 || (axis.out - 1) * stride >= input + axis.pad_begin {
        return Err("a window lies wholly in the padding".into());
    }
    Ok(axis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_onnx_padding_rules() {
        assert_eq!(window("", 192, 3, 2, (0, 1)).unwrap(), Axis { out: 96, pad_begin: 0 });
        assert_eq!(window("VALID", 96, 2, 2, (0, 0)).unwrap(), Axis { out: 48, pad_begin: 0 });
        assert_eq!(window("SAME_UPPER", 64, 2, 2, (0, 0)).unwrap(), Axis { out: 32, pad_begin: 0 });
        assert_eq!(window("SAME_UPPER", 5, 3, 1, (0, 0)).unwrap(), Axis { out: 5, pad_begin: 1 });
        assert_eq!(window("SAME_LOWER", 6, 4, 1, (0, 0)).unwrap(), Axis { out: 6, pad_begin: 2 });
        assert!(window("", 2, 5, 1, (0, 0)).is_err());
        assert!(window("", 4, 1, 1, (0, 3)).is_err(), "last window only padding");
        assert!(window("REFLECT", 4, 1, 1, (0, 0)).is_err());
    }
}
