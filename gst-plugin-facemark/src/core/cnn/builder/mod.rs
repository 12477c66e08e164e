//! Lowering an ONNX graph to the engine's steps: which nodes fuse, what each becomes.

mod allocate;
mod conv;

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{GraphProto, NodeProto};

use super::engine::Engine;
use super::kernels::{Isa, ROW_SLACK, Strides, Window, padded};
use super::onnx::{self, Attrs, Const};
use super::{ActSpec, MAX_FLOATS, MAX_TOTAL_FLOATS, Spatial, Step, Val, ValueId};

/// A Conv node with the Add and activation that follow it and are computed with it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fused {
    conv: usize,
    add: Option<usize>,
    act: Option<usize>,
}

pub(super) struct Builder<'g> {
    graph: &'g GraphProto,
    isa: Isa,
    consts: HashMap<String, Const>,
    vals: HashMap<String, Val>,
    /// Size in floats of each value's buffer.
    sizes: Vec<usize>,
    steps: Vec<Step>,
    /// Values that get a buffer of their own, zeroed, never reused (zero borders).
    bordered: HashSet<ValueId>,
}

fn unsupported<T>(node: &NodeProto, what: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{} node {:?}: {what}", node.op_type, node.name))
}

impl<'g> Builder<'g> {
    pub(super) fn new(graph: &'g GraphProto, isa: Isa) -> Result<Self, String> {
        Ok(Builder {
            graph,
            isa,
            consts: onnx::constants(graph)?,
            vals: HashMap::new(),
            sizes: Vec::new(),
            steps: Vec::new(),
            bordered: HashSet::new(),
        })
    }

    fn value(&mut self, floats: usize) -> ValueId {
        self.sizes.push(floats);
        self.sizes.len() - 1
    }

    fn spatial(&mut self, c: usize, h: usize, w: usize) -> Spatial {
        let cp = padded(c);
        Spatial { v: self.value((h * w + ROW_SLACK) * cp), c, cp, h, w, nchw: false }
    }

    fn val(&self, node: &NodeProto, i: usize) -> Result<Val, String> {
        let name = node.input.get(i).ok_or_else(|| format!("{} lacks input {i}", node.name))?;
        self.vals
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{} node {:?}: input {name} is not a computed value", node.op_type, node.name))
    }

    fn spatial_in(&self, node: &NodeProto, i: usize) -> Result<Spatial, String> {
        match self.val(node, i)? {
            Val::Spatial(s) => Ok(s),
            Val::Flat { .. } => unsupported(node, "input is not a 4-D feature map"),
        }
    }

    fn f32_const(&self, node: &NodeProto, i: usize) -> Result<(&[usize], &[f32]), String> {
        match node.input.get(i).and_then(|n| self.consts.get(n)) {
            Some(Const::F32 { dims, data }) => Ok((dims, data)),
            _ => unsupported(node, format!("input {i} is not a float constant")),
        }
    }

    fn i64_const(&self, node: &NodeProto, i: usize) -> Result<&[i64], String> {
        match node.input.get(i).and_then(|n| self.consts.get(n)) {
            Some(Const::I64 { data }) => Ok(data),
            _ => unsupported(node, format!("input {i} is not an int64 constant")),
        }
    }

    /// `s` as plain NHWC, copying when it is not.
    fn plain(&mut self, s: Spatial) -> Spatial {
        if s.is_plain() {
            return s;
        }
        let dst = self.spatial(s.c, s.h, s.w);
        self.steps.push(Step::Widen { src: s, dst });
        dst
    }

    /// `v` as row-major values with its ONNX shape.
    fn flat(&mut self, v: Val) -> (ValueId, Vec<usize>) {
        match v {
            Val::Flat { v, shape } => (v, shape),
            Val::Spatial(s) => {
                let dst = self.value(s.c * s.h * s.w);
                self.steps.push(Step::Flatten { src: s, dst, nhwc: false });
                (dst, vec![1, s.c, s.h, s.w])
            }
        }
    }

    /// The `Relu` or `PRelu` node's activation for a map of `c` channels padded to `cp`.
    fn activation(&self, node: &NodeProto, c: usize, cp: usize) -> Result<ActSpec, String> {
        match node.op_type.as_str() {
            "Relu" => Ok(ActSpec::Relu),
            "PRelu" => {
                let (dims, s) = self.f32_const(node, 1)?;
                // One slope, or one per channel ([C, 1, 1] after leading 1s, as NCHW
                // broadcasting puts it): anything else broadcasts along other axes.
                let leading = dims.iter().take_while(|&&d| d == 1).count();
                let per_channel = dims[leading.min(dims.len())..] == [c, 1, 1];
                if s.len() != 1 && !per_channel {
                    return unsupported(node, format!("slopes of shape {dims:?} for {c} channels"));
                }
                Ok(ActSpec::PRelu(
                    (0..cp)
                        .map(|ch| match s.len() {
                            1 => s[0],
                            _ if ch < c => s[ch],
                            _ => 0.0,
                        })
                        .collect(),
                ))
            }
            _ => unsupported(node, "not an activation"),
        }
    }

    pub(super) fn build(mut self, input: [usize; 4], keep: &[&str]) -> Result<Engine, String> {
        let graph = self.graph;
        let input_name = graph
            .input
            .iter()
            .map(|i| &i.name)
            .find(|n| !self.consts.contains_key(*n))
            .ok_or("the model has no input")?
            .clone();
        let [n, c, h, w] = input;
        if n != 1 || c == 0 || h == 0 || w == 0 {
            return Err(format!("input shape {input:?}: one image or feature map expected"));
        }
        let input_v = self.value(c * h * w);
        self.vals.insert(input_name, Val::Spatial(Spatial { v: input_v, c, cp: c, h, w, nchw: true }));
        let outputs: Vec<String> = graph
            .output
            .iter()
            .map(|o| o.name.clone())
            .filter(|o| keep.is_empty() || keep.contains(&o.as_str()))
            .collect();
        for k in keep {
            if !outputs.iter().any(|o| o == k) {
                return Err(format!("the model has no output named {k}"));
            }
        }
        if outputs.is_empty() {
            return Err("the model has no output".into());
        }
        let needed = onnx::needed_nodes(graph, &outputs);
        let groups = self.fusion(&needed, &outputs);
        let mut ends: HashMap<usize, Fused> = HashMap::new();
        let mut absorbed = HashSet::new();
        for g in &groups {
            let last = g.act.or(g.add).unwrap_or(g.conv);
            ends.insert(last, *g);
            absorbed.extend([Some(g.conv), g.add, g.act].into_iter().flatten());
        }
        for &i in &needed {
            let node = &graph.node[i];
            if let Some(g) = ends.get(&i) {
                self.conv(*g)?;
            } else if !absorbed.contains(&i) {
                self.node(node)?;
            }
        }
        let mut outs = Vec::new();
        for name in &outputs {
            let v = self.vals.get(name).cloned().ok_or_else(|| format!("output {name} is not computed"))?;
            let (v, shape) = self.flat(v);
            outs.push((name.clone(), v, shape.iter().product()));
        }
        if self.sizes.iter().any(|&s| s > MAX_FLOATS) {
            return Err(format!("a tensor larger than {MAX_FLOATS} values"));
        }
        // Each is at most MAX_FLOATS now: the sum cannot overflow.
        let total: usize = self.sizes.iter().sum();
        if total > MAX_TOTAL_FLOATS {
            return Err(format!("tensors of {total} values together (at most {MAX_TOTAL_FLOATS})"));
        }
        // When a bordered copy of the input is all that reads it, the caller writes the input
        // straight into that copy.
        let mut input = (input_v, Strides { c: h * w, y: w, x: 1 }, 0);
        let readers: Vec<usize> = (0..self.steps.len()).filter(|&i| self.steps[i].reads().contains(&input_v)).collect();
        if let [only] = readers[..]
            && let Step::Place { dst, strides, origin, .. } = self.steps[only]
            && strides.x == 1
        {
            input = (dst, strides, origin);
            self.steps.remove(only);
        }
        self.allocate(input, outs)
    }

    /// Finds each Conv's following Add (whose other input becomes the residual) and
    /// Relu/PRelu, when nothing else reads the values in between.
    fn fusion(&self, needed: &[usize], outputs: &[String]) -> Vec<Fused> {
        let graph = self.graph;
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        for &i in needed {
            for input in &graph.node[i].input {
                readers.entry(input.as_str()).or_default().push(i);
            }
        }
        let only_reader = |name: &str| -> Option<usize> {
            if outputs.iter().any(|o| o == name) {
                return None;
            }
            match readers.get(name).map(Vec::as_slice) {
                Some([r]) => Some(*r),
                _ => None,
            }
        };
        let is_act = |i: usize| {
            let n = &graph.node[i];
            n.op_type == "Relu" || (n.op_type == "PRelu" && n.input.len() == 2)
        };
        let mut groups = Vec::new();
        // An Add two convolutions feed goes with the first; the second runs on its own.
        let mut claimed = HashSet::new();
        for &i in needed {
            let node = &graph.node[i];
            if node.op_type != "Conv" || node.output.len() != 1 {
                continue;
            }
            let depthwise = Attrs(node).int("group", 1) != 1;
            let mut g = Fused { conv: i, add: None, act: None };
            let mut last = &node.output[0];
            if let Some(r) = only_reader(last) {
                let n = &graph.node[r];
                if !depthwise
                    && n.op_type == "Add"
                    && n.input.len() == 2
                    && n.input[0] != n.input[1]
                    && n.output.len() == 1
                    && claimed.insert(r)
                {
                    g.add = Some(r);
                    last = &n.output[0];
                }
            }
            if let Some(r) = only_reader(last).filter(|&r| is_act(r)) {
                g.act = Some(r);
            }
            groups.push(g);
        }
        groups
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), String> {
        let out = node.output.first().ok_or("a node without output")?.clone();
        let a = Attrs(node);
        let val = match node.op_type.as_str() {
            "Constant" => return Ok(()),
            "Relu" | "PRelu" => {
                let src = self.spatial_in(node, 0)?;
                let src = self.plain(src);
                let dst = self.spatial(src.c, src.h, src.w);
                let act = self.activation(node, src.c, src.cp)?;
                self.steps.push(Step::Activation { src, dst, act });
                Val::Spatial(dst)
            }
            "Add" => {
                let (x, y) = (self.spatial_in(node, 0)?, self.spatial_in(node, 1)?);
                if (x.c, x.h, x.w) != (y.c, y.h, y.w) {
                    return unsupported(node, "operands of different shapes");
                }
                let (x, y) = (self.plain(x), self.plain(y));
                let dst = self.spatial(x.c, x.h, x.w);
                self.steps.push(Step::Add { a: x, b: y, dst });
                Val::Spatial(dst)
            }
            "MaxPool" => {
                for name in a.names() {
                    if !["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides", "storage_order"]
                        .contains(&name)
                    {
                        return unsupported(node, format!("attribute {name}"));
                    }
                }
                if a.int("ceil_mode", 0) != 0 || a.ints("dilations").is_some_and(|d| d.iter().any(|&d| d != 1)) {
                    return unsupported(node, "ceil_mode or dilation");
                }
                let src = self.spatial_in(node, 0)?;
                let src = self.plain(src);
                let k = a.ints("kernel_shape").unwrap_or_default();
                let strides = a.ints("strides").unwrap_or(vec![1, 1]);
                let pads = a.ints("pads").unwrap_or(vec![0; 4]);
                let (&[ky, kx], &[sy, sx], &[pt, pl, pb, pr]) = (k.as_slice(), strides.as_slice(), pads.as_slice())
                else {
                    return unsupported(node, "kernel, strides or pads are not 2-D");
                };
                if ky != kx || sy != sx || ky <= 0 || sy <= 0 || [pt, pl, pb, pr].iter().any(|&p| p < 0) {
                    return unsupported(node, "non-square window");
                }
                let (k, s) = (ky as usize, sy as usize);
                let auto_pad = a.string("auto_pad").unwrap_or_default();
                let ay = onnx::window(&auto_pad, src.h, k, s, (pt as usize, pb as usize))
                    .or_else(|e| unsupported(node, e))?;
                let ax = onnx::window(&auto_pad, src.w, k, s, (pl as usize, pr as usize))
                    .or_else(|e| unsupported(node, e))?;
                let dst = self.spatial(src.c, ay.out, ax.out);
                self.steps.push(Step::MaxPool { src, dst, win: sliding(&src, &dst, k, s, (ay, ax)) });
                Val::Spatial(dst)
            }
            "Pad" => {
                let src = self.spatial_in(node, 0)?;
                let mode = a.string("mode").unwrap_or_else(|| "constant".into());
                let pads = match a.ints("pads") {
                    Some(p) => p,
                    None => self.i64_const(node, 1)?.to_vec(),
                };
                if node.input.len() > 2 && !node.input[2].is_empty() {
                    let (_, v) = self.f32_const(node, 2)?;
                    if v.iter().any(|&v| v != 0.0) {
                        return unsupported(node, "non-zero padding value");
                    }
                }
                let &[0, 0, 0, 0, 0, extra, 0, 0] = pads.as_slice() else {
                    return unsupported(node, format!("pads {pads:?} (only extra channels)"));
                };
                if mode != "constant" || extra < 0 || src.nchw {
                    return unsupported(node, "mode");
                }
                // The extra channels are zeros: the same memory, read as more channels.
                Val::Spatial(Spatial { c: src.c + extra as usize, ..src })
            }
            "Transpose" => {
                let src = self.spatial_in(node, 0)?;
                if a.ints("perm").as_deref() != Some(&[0, 2, 3, 1]) {
                    return unsupported(node, "only NCHW -> NHWC");
                }
                let dst = self.value(src.c * src.h * src.w);
                self.steps.push(Step::Flatten { src, dst, nhwc: true });
                Val::Flat { v: dst, shape: vec![1, src.h, src.w, src.c] }
            }
            "Reshape" => {
                let v = self.val(node, 0)?;
                let spec = self.i64_const(node, 1)?.to_vec();
                let (v, shape) = self.flat(v);
                let shape = reshape(&shape, &spec).or_else(|e| unsupported(node, e))?;
                Val::Flat { v, shape }
            }
            "Concat" => {
                let mut parts = Vec::new();
                for i in 0..node.input.len() {
                    let v = self.val(node, i)?;
                    parts.push(self.flat(v));
                }
                let rank = parts[0].1.len() as i64;
                let axis = a.int("axis", 0);
                let axis = if axis < 0 { axis + rank } else { axis };
                if !(0..rank).contains(&axis) {
                    return unsupported(node, "axis");
                }
                let axis = axis as usize;
                let mut shape = parts[0].1.clone();
                shape[axis] = 0;
                for (_, s) in &parts {
                    if s.len() != shape.len() || s.iter().zip(&shape).enumerate().any(|(d, (x, y))| d != axis && x != y)
                    {
                        return unsupported(node, "inputs of different shapes");
                    }
                    shape[axis] += s[axis];
                }
                let outer: usize = shape[..axis].iter().product();
                let srcs = parts.iter().map(|(v, s)| (*v, s[axis..].iter().product())).collect();
                let dst = self.value(shape.iter().product());
                self.steps.push(Step::Concat { srcs, dst, outer });
                Val::Flat { v: dst, shape }
            }
            other => return unsupported(node, format!("op {other}")),
        };
        self.vals.insert(out, val);
        Ok(())
    }
}

/// The window of a depthwise convolution or max pool from `src` to `dst` (same channels).
fn sliding(src: &Spatial, dst: &Spatial, k: usize, stride: usize, (y, x): (onnx::Axis, onnx::Axis)) -> Window {
    debug_assert_eq!(src.cp, dst.cp);
    Window {
        h: src.h,
        w: src.w,
        cp: src.cp,
        k,
        stride,
        pad_top: y.pad_begin,
        pad_left: x.pad_begin,
        oh: dst.h,
        ow: dst.w,
    }
}

/// ONNX Reshape's target shape (0 copies the dimension, -1 takes the rest).
fn reshape(shape: &[usize], spec: &[i64]) -> Result<Vec<usize>, String> {
    let total: usize = shape.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        out.push(match d {
            0 => *shape.get(i).ok_or("0 past the input's rank")?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            d if d > 0 => d as usize,
            _ => return Err(format!("shape {spec:?}")),
        });
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("shape {spec:?} for {total} values"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("shape {spec:?} for {total} values"));
    }
    Ok(out)
}
