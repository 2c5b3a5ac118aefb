//! The tensor arena TensorFlow Lite Micro needs for a model, predicted by replaying what its
//! interpreter allocates, in order.
//!
//! TFLM's arena has two ends. The tail grows down with persistent allocations: the allocator
//! objects, one `TfLiteEvalTensor` per tensor and one `NodeAndRegistration` per operator, each
//! operator's parsed options and `OpData`, what kernels allocate while preparing (per-channel
//! multipliers and shifts, tables), variable tensors, scratch-buffer handles and the model
//! inputs' and outputs' `TfLiteTensor`s. The head grows up with short-lived allocations: scratch
//! buffer requests and temporary `TfLiteTensor`s while kernels prepare, the allocation-info array
//! and the greedy planner's bookkeeping while the plan is made, and finally the planned buffers
//! themselves (activations and scratch buffers, placed by [`super::greedy`] from their lifetimes
//! in execution order, each rounded up to 16 bytes). The arena must hold head and tail at every
//! moment, so the prediction is the largest sum over the whole sequence, rounded up to 16.
//!
//! Struct sizes and kernel allocations come from [`super::layout`] and [`super::kernels`].

use serde::Serialize;

use crate::error::{Error, Location, Result};
use crate::ir::{Graph, Model, Tensor, TensorId};

use super::greedy::{place, plan_size, Request};
use super::kernels::{kernel_allocs, KernelAllocs};
use super::layout::{self as l, Alloc};

/// The predicted arena, with its two parts once the interpreter is ready.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArenaPlan {
    /// The smallest `arena_size` with which TFLM's `AllocateTensors` succeeds.
    pub arena_bytes: u64,
    /// The planned section: activations and scratch buffers, overlapped by lifetime.
    pub planned_bytes: u64,
    /// The persistent section: runtime structures, kernel data, variable tensors.
    pub persistent_bytes: u64,
    /// What the prediction only estimates: operators whose kernels are not modelled (generic
    /// sizes stand in), control flow between subgraphs, an offline memory plan.
    pub estimated_for: Vec<String>,
}

fn overflow() -> Error {
    Error::graph("the model's tensor sizes overflow 64-bit arithmetic", Location::default())
}

fn align_up(x: u64, a: u64) -> Result<u64> {
    Ok(x.checked_add(a - 1).ok_or_else(overflow)? / a * a)
}

/// The two ends of the arena and the largest total they have reached.
#[derive(Default)]
struct Arena {
    /// Bytes used from the end, including alignment padding.
    tail: u64,
    /// Bytes of the head's resizable section (scratch requests, later the plan).
    head: u64,
    /// End of the temporary allocations above the head.
    temp: u64,
    peak: u64,
}

impl Arena {
    fn note(&mut self, head_extent: u64, tail_extent: u64) -> Result<()> {
        self.peak = self.peak.max(head_extent.checked_add(tail_extent).ok_or_else(overflow)?);
        Ok(())
    }

    /// A persistent allocation: `AlignPointerDown(tail - size, align)` from an aligned end.
    fn persistent(&mut self, a: Alloc) -> Result<()> {
        self.tail = align_up(self.tail.checked_add(a.size).ok_or_else(overflow)?, a.align)?;
        self.note(self.head.max(self.temp), self.tail)
    }

    fn temp(&mut self, a: Alloc) -> Result<()> {
        self.temp = align_up(self.temp, a.align)?.checked_add(a.size).ok_or_else(overflow)?;
        self.note(self.temp, self.tail)
    }

    /// Resizes the head (all temporaries released first).
    fn set_head(&mut self, bytes: u64) -> Result<()> {
        self.head = bytes;
        self.temp = bytes;
        self.note(bytes, self.tail)
    }
}

fn mul(a: u64, b: u64) -> Result<u64> {
    a.checked_mul(b).ok_or_else(overflow)
}

fn array(item: Alloc, count: u64) -> Result<Alloc> {
    Ok(Alloc { size: mul(item.size, count)?, align: item.align })
}

/// Bytes of a tensor as TFLM sizes it (declared shape; one byte per element for packed types).
fn tensor_bytes(t: &Tensor) -> Result<u64> {
    let elements = t.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64)).ok_or_else(overflow)?;
    mul(elements, t.dtype.size_of().unwrap_or(1) as u64)
}

/// Whether TFLM reads the tensor from the flatbuffer (a constant with data) instead of the arena.
fn in_flatbuffer(t: &Tensor) -> bool {
    t.data.as_ref().is_some_and(|d| d.byte_len() > 0)
}

/// The quantization structures a `TfLiteTensor` of `t` carries: the struct and its zero points.
fn quantization_allocs(t: &Tensor) -> Result<Vec<Alloc>> {
    match &t.quant {
        Some(q) if !q.scale.is_empty() && !q.zero_point.is_empty() => {
            let zp = l::INT_ARRAY_HEADER.checked_add(mul(4, q.scale.len() as u64)?).ok_or_else(overflow)?;
            Ok(vec![l::AFFINE_QUANTIZATION, Alloc { size: zp, align: l::INT_ARRAY_ALIGN }])
        }
        _ => Ok(vec![]),
    }
}

/// Model allocation up to the kernels: allocator objects, tensors and nodes, options, `OpData`.
fn start(arena: &mut Arena, model: &Model, kernels: &[Vec<KernelAllocs>]) -> Result<()> {
    for a in l::ALLOCATOR_OBJECTS {
        arena.persistent(a)?;
    }
    arena.persistent(l::BUILTIN_DATA_ALLOCATOR)?;
    arena.set_head(mul(l::SCRATCH_REQUEST.size, l::MAX_SCRATCH_PER_OP)?)?;
    arena.persistent(array(l::SUBGRAPH_ALLOCATIONS, model.graphs.len() as u64)?)?;
    for g in &model.graphs {
        arena.persistent(array(l::EVAL_TENSOR, g.tensors.len() as u64)?)?;
    }
    for g in &model.graphs {
        arena.persistent(array(l::NODE_AND_REGISTRATION, g.nodes.len() as u64)?)?;
    }
    for k in kernels.iter().flatten() {
        if let Some(a) = k.builtin_data {
            arena.persistent(a)?;
        }
    }
    for k in kernels.iter().flatten() {
        if let Some(size) = k.op_data {
            arena.persistent(Alloc { size, align: l::ARENA_ALIGNMENT })?;
        }
    }
    Ok(())
}

/// Every kernel's `Prepare`; returns the scratch requests as (subgraph, node, bytes).
fn prepare(arena: &mut Arena, model: &Model, kernels: &[Vec<KernelAllocs>]) -> Result<Vec<(usize, usize, u64)>> {
    let mut scratch = Vec::new();
    for (gi, (g, ks)) in model.graphs.iter().zip(kernels).enumerate() {
        for (ni, k) in ks.iter().enumerate() {
            for &t in &k.temp_tensors {
                let Some(t) = g.tensors.get(t) else { continue };
                arena.temp(l::TFLITE_TENSOR)?;
                for a in quantization_allocs(t)? {
                    arena.temp(a)?;
                }
            }
            for &size in &k.prepare_persistent {
                arena.persistent(Alloc { size, align: l::ARENA_ALIGNMENT })?;
            }
            scratch.extend(k.scratch.iter().map(|&b| (gi, ni, b)));
            let room = (scratch.len() as u64).checked_add(l::MAX_SCRATCH_PER_OP).ok_or_else(overflow)?;
            arena.set_head(mul(l::SCRATCH_REQUEST.size, room)?)?;
        }
    }
    Ok(scratch)
}

/// First and last step each tensor of the main graph is alive, as TFLM's allocation-info builder
/// marks them: graph inputs at step 0, operator `i`'s operands at step `i + 1`, graph outputs
/// until the end. Tensors no operator touches keep -1 (so do other subgraphs' tensors here).
fn lifetimes(g: &Graph) -> Vec<(i64, i64)> {
    let mut life = vec![(-1i64, -1i64); g.tensors.len()];
    let mut mark = |t: TensorId, step: i64, create: bool| {
        if let Some(l) = life.get_mut(t) {
            if create && l.0 == -1 {
                l.0 = step;
            }
            l.1 = step;
        }
    };
    for &t in &g.inputs {
        mark(t, 0, true);
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let step = i as i64 + 1;
        for &o in &n.outputs {
            mark(o, step, true);
        }
        for &t in n.inputs.iter().flatten() {
            mark(t, step, false);
        }
    }
    for &t in &g.outputs {
        mark(t, g.nodes.len() as i64, true);
    }
    life
}

/// The buffers the plan places: every arena tensor of every subgraph, then the scratch buffers.
fn requests(model: &Model, scratch: &[(usize, usize, u64)]) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (gi, g) in model.graphs.iter().enumerate() {
        let life = if gi == 0 { lifetimes(g) } else { vec![(-1, -1); g.tensors.len()] };
        for (t, &(first, last)) in g.tensors.iter().zip(&life) {
            let bytes = tensor_bytes(t)?;
            if !in_flatbuffer(t) && !t.is_variable && bytes != 0 {
                out.push(Request { size: align_up(bytes, l::ARENA_ALIGNMENT)?, first, last });
            }
        }
    }
    for &(gi, ni, bytes) in scratch {
        let step = if gi == 0 { ni as i64 + 1 } else { -1 };
        out.push(Request { size: align_up(bytes, l::ARENA_ALIGNMENT)?, first: step, last: step });
    }
    Ok(out)
}

/// Buffers beyond which the quadratic placement would take too long on hostile input.
const MAX_PLANNED_BUFFERS: usize = 1 << 13;

/// Scratch handles, variable tensors and the memory plan; returns the planned bytes.
fn commit_plan(arena: &mut Arena, model: &Model, scratch: &[(usize, usize, u64)]) -> Result<u64> {
    if !scratch.is_empty() {
        arena.persistent(array(l::SCRATCH_HANDLE, scratch.len() as u64)?)?;
    }
    arena.temp(array(l::SUBGRAPH_OFFSET, model.graphs.len() as u64)?)?;
    let tensors: u64 = model.graphs.iter().map(|g| g.tensors.len() as u64).sum();
    let infos = tensors.checked_add(scratch.len() as u64).ok_or_else(overflow)?;
    arena.temp(array(l::ALLOCATION_INFO, infos)?)?;
    for t in model.graphs.iter().flat_map(|g| &g.tensors).filter(|t| t.is_variable) {
        arena.persistent(Alloc { size: tensor_bytes(t)?, align: l::ARENA_ALIGNMENT })?;
    }
    let reqs = requests(model, scratch)?;
    if reqs.len() > MAX_PLANNED_BUFFERS {
        return Err(Error::unsupported(
            format!("{} buffers to plan (more than {MAX_PLANNED_BUFFERS})", reqs.len()),
            Location::default(),
        ));
    }
    // The planner's bookkeeping takes the memory between the aligned temporaries and the tail.
    let bookkeeping = mul(l::GREEDY_BYTES_PER_BUFFER, reqs.len() as u64)?;
    let planner_end = align_up(arena.temp, l::ARENA_ALIGNMENT)?.checked_add(bookkeeping).ok_or_else(overflow)?;
    arena.note(planner_end, align_up(arena.tail, l::ARENA_ALIGNMENT)?)?;
    let planned = plan_size(&reqs, &place(&reqs));
    arena.set_head(planned)?;
    Ok(planned)
}

/// The interpreter's persistent `TfLiteTensor`s for the main graph's inputs, then outputs.
fn io_tensors(arena: &mut Arena, g: &Graph) -> Result<()> {
    for list in [&g.inputs, &g.outputs] {
        arena.persistent(Alloc { size: mul(l::POINTER, list.len() as u64)?, align: l::ARENA_ALIGNMENT })?;
        for t in list.iter().filter_map(|&t| g.tensors.get(t)) {
            arena.persistent(l::TFLITE_TENSOR)?;
            for a in quantization_allocs(t)? {
                arena.persistent(a)?;
            }
        }
    }
    Ok(())
}

/// What the prediction does not model exactly (see [`ArenaPlan::estimated_for`]).
fn estimated_for(model: &Model, kernels: &[Vec<KernelAllocs>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for (g, ks) in model.graphs.iter().zip(kernels) {
        for (n, k) in g.nodes.iter().zip(ks) {
            if !k.modeled {
                add(n.op.name().to_string());
            }
        }
    }
    if model.graphs.len() > 1 {
        add(format!("{} subgraphs (control flow)", model.graphs.len()));
    }
    if model.metadata.iter().any(|(name, _)| name == "OfflineMemoryAllocation") {
        add("OfflineMemoryAllocation metadata".into());
    }
    out
}

/// Predicts TFLM's minimum tensor arena for `model` (see the module documentation).
pub fn plan_arena(model: &Model) -> Result<ArenaPlan> {
    let g = model.graphs.first().ok_or_else(|| Error::graph("model has no graphs", Location::default()))?;
    let kernels: Vec<Vec<KernelAllocs>> =
        model.graphs.iter().map(|g| g.nodes.iter().map(|n| kernel_allocs(g, n)).collect()).collect();
    let mut arena = Arena::default();
    start(&mut arena, model, &kernels)?;
    let scratch = prepare(&mut arena, model, &kernels)?;
    let planned = commit_plan(&mut arena, model, &scratch)?;
    io_tensors(&mut arena, g)?;
    Ok(ArenaPlan {
        arena_bytes: align_up(arena.peak, l::ARENA_ALIGNMENT)?,
        planned_bytes: planned,
        persistent_bytes: arena.tail,
        estimated_for: estimated_for(model, &kernels),
    })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::{Activation, Builder, DType, FullyConnected, Op, QuantParams, TensorData};

    /// An int8 MLP `x[1,k] -> FC -> FC -> y`, quantized per tensor.
    fn mlp(k: usize, hidden: usize) -> Model {
        let mut b = Builder::new();
        let x = b.input("x", &[1, k]);
        let w1 = b.constant_f32("w1", &[hidden, k], vec![0.0; hidden * k]);
        let fc =
            || FullyConnected { activation: Activation::Relu, keep_num_dims: false, asymmetric_quantize_inputs: false };
        let h = b.node(Op::FullyConnected(fc()), &[Some(x), Some(w1), None], &[1, hidden]);
        let w2 = b.constant_f32("w2", &[4, hidden], vec![0.0; 4 * hidden]);
        let y = b.node(Op::FullyConnected(fc()), &[Some(h), Some(w2), None], &[1, 4]);
        let mut m = b.finish(&[y]);
        for t in &mut m.main_mut().tensors {
            let n = t.num_elements();
            t.dtype = DType::I8;
            t.quant = Some(QuantParams::per_tensor(0.1, 0));
            if t.data.is_some() {
                t.data = TensorData::from_i8(&t.shape, vec![1; n]);
            }
        }
        m
    }

    #[test]
    fn activations_are_planned_by_lifetime() {
        let p = plan_arena(&mlp(100, 300)).unwrap();
        // x (112) and h (304) meet at step 1, h and y (16) at step 2: 304 + 112 at most.
        assert_eq!(p.planned_bytes, 304 + 112);
        assert!(p.estimated_for.is_empty());
        assert_eq!(p.arena_bytes % 16, 0);
        assert!(p.arena_bytes >= p.planned_bytes + p.persistent_bytes);
    }

    #[test]
    fn persistent_part_grows_with_operators_not_with_activations() {
        let small = plan_arena(&mlp(100, 300)).unwrap();
        let wide = plan_arena(&mlp(1000, 3000)).unwrap();
        assert_eq!(small.persistent_bytes, wide.persistent_bytes);
        assert!(wide.planned_bytes > small.planned_bytes);
    }

    #[test]
    fn variable_tensors_are_persistent_and_unknown_kernels_are_estimated() {
        let mut m = mlp(8, 8);
        let before = plan_arena(&m).unwrap();
        let g = m.main_mut();
        let state = g.add_tensor(Tensor { is_variable: true, ..Tensor::new("state", DType::I8, vec![1, 1000]) });
        g.nodes[0].inputs.push(Some(state));
        g.nodes[1].op = Op::Opaque(crate::ir::Opaque {
            name: "GATHER".into(),
            payload: crate::ir::OpaquePayload::new(crate::tflite::OpaqueOperator {
                builtin_code: 36,
                custom_code: None,
                version: 1,
                builtin_options: None,
                builtin_options_2: None,
                custom_options: None,
                mutating_variable_inputs: None,
            }),
        });
        let after = plan_arena(&m).unwrap();
        assert!(after.persistent_bytes >= before.persistent_bytes + 1000);
        assert_eq!(after.planned_bytes, before.planned_bytes);
        assert_eq!(after.estimated_for, vec!["GATHER".to_string()]);
    }

    #[test]
    fn hostile_shapes_are_errors_not_panics() {
        let mut m = mlp(8, 8);
        // Three dimensions of usize::MAX overflow 64 bits on 32-bit targets too.
        m.main_mut().tensors[0].shape = vec![usize::MAX; 3];
        assert!(plan_arena(&m).is_err());
    }
}
