//! Buffers for the values: each reused once the last step reading its value ran.

use std::collections::HashSet;

use super::Builder;
use crate::core::cnn::ValueId;
use crate::core::cnn::engine::{Buffer, Engine};
use crate::core::cnn::kernels::Strides;

impl Builder<'_> {
    /// Gives each value a buffer: a buffer is reused once the last step reading its value ran.
    /// Refuses a plan where a step would read a value nothing wrote before it, or the buffer it
    /// writes (what [`Engine::run`] relies on to hand out the buffers without checking).
    pub(super) fn allocate(
        self,
        (input, strides, origin): (ValueId, Strides, usize),
        outputs: Vec<(String, ValueId, usize)>,
    ) -> Result<Engine, String> {
        let n = self.sizes.len();
        let mut last_read = vec![0usize; n];
        for (i, s) in self.steps.iter().enumerate() {
            for r in s.reads() {
                last_read[r] = last_read[r].max(i);
            }
        }
        let keep: HashSet<ValueId> = outputs.iter().map(|o| o.1).chain([input]).collect();
        let mut buffers: Vec<Buffer> = Vec::new();
        let mut sizes: Vec<usize> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut slot = vec![usize::MAX; n];
        let take = |size: usize, free: &mut Vec<usize>, sizes: &mut Vec<usize>| -> usize {
            // The smallest free buffer that fits, else the largest grown, else a new one.
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, b)| sizes[**b] >= size)
                .min_by_key(|(_, b)| sizes[**b])
                .or_else(|| free.iter().enumerate().max_by_key(|(_, b)| sizes[**b]))
                .map(|(i, _)| i);
            match fit {
                Some(i) => {
                    let b = free.swap_remove(i);
                    sizes[b] = sizes[b].max(size);
                    b
                }
                None => {
                    sizes.push(size);
                    sizes.len() - 1
                }
            }
        };
        if self.bordered.contains(&input) {
            sizes.push(self.sizes[input]);
            slot[input] = sizes.len() - 1;
        } else {
            slot[input] = take(self.sizes[input], &mut free, &mut sizes);
        }
        for (i, s) in self.steps.iter().enumerate() {
            let w = s.writes();
            if let Some(r) = s.reads().into_iter().find(|&r| slot[r] == usize::MAX || r == w) {
                return Err(format!("step {i} reads value {r} before it is written"));
            }
            if slot[w] == usize::MAX {
                slot[w] = if self.bordered.contains(&w) {
                    sizes.push(self.sizes[w]);
                    sizes.len() - 1
                } else {
                    take(self.sizes[w], &mut free, &mut sizes)
                };
            }
            if s.reads().into_iter().any(|r| slot[r] == slot[w]) {
                return Err(format!("step {i} reads the buffer it writes"));
            }
            for r in s.reads() {
                let kept = keep.contains(&r) || self.bordered.contains(&r);
                if last_read[r] == i && !kept && !free.contains(&slot[r]) {
                    free.push(slot[r]);
                }
            }
        }
        for size in &sizes {
            buffers.push(Buffer::new(*size));
        }
        Ok(Engine {
            isa: self.isa,
            steps: self.steps.into(),
            buffers,
            slot,
            input,
            input_view: (strides, origin),
            outputs,
        })
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::GraphProto;

    use super::*;
    use crate::core::cnn::kernels::Isa;
    use crate::core::cnn::{Spatial, Step};

    /// A plan of one `Add` from `a` and `b` into `dst`, values made by `make`.
    fn plan(make: impl FnOnce(&mut Builder, Spatial, Spatial) -> Step) -> Result<Engine, String> {
        let graph = GraphProto::default();
        let mut b = Builder::new(&graph, Isa::Portable).unwrap();
        let input = b.spatial(8, 2, 2);
        let out = b.spatial(8, 2, 2);
        let step = make(&mut b, input, out);
        b.steps.push(step);
        let strides = Strides { c: 1, y: 16, x: 8 };
        b.allocate((input.v, strides, 0), vec![("out".into(), out.v, 32)])
    }

    #[test]
    fn a_plan_that_reads_what_nothing_wrote_is_refused() {
        assert!(plan(|_, input, out| Step::Add { a: input, b: input, dst: out }).is_ok());
        let never_written = plan(|b, input, out| Step::Add { a: input, b: b.spatial(8, 2, 2), dst: out });
        assert!(never_written.unwrap_err().contains("before it is written"));
        let its_own_output = plan(|_, input, out| Step::Add { a: input, b: out, dst: out });
        assert!(its_own_output.unwrap_err().contains("before it is written"));
    }
}
