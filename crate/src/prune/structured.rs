//! Structured pruning: whole output channels (CONV_2D filters, FULLY_CONNECTED neurons) go, and
//! the graph is rewritten so every tensor that carries those channels shrinks with them.
//!
//! Channels are tracked as *channel groups*: sets of tensors whose last dimension must keep the same
//! channels. A layer's output starts a group; element-wise operators, pooling, padding, depthwise
//! convolutions (multiplier 1), reshapes that keep the last dimension and reductions over other
//! dimensions extend it; ADD/SUB/MUL of two activations merge their groups, so a residual block's
//! channels are pruned together or not at all. A flatten (`[N, H, W, C] → [N, H·W·C]`) carries the
//! group with a repeat count, so the FULLY_CONNECTED after it loses the matching columns. A group
//! touched by anything else (model inputs and outputs, SOFTMAX, TRANSPOSE, CONCATENATION along
//! channels, depthwise multipliers, ...) is frozen.
//!
//! The target is a fraction of all weights of the weighted layers: global methods remove the
//! lowest-ranked channels of the whole model one at a time, layer methods the same fraction of every
//! group, until that many weights are gone. Every group keeps at least one channel.

use std::collections::BTreeMap;

use super::score::{values, Scores};
use super::{Layer, Method, PruneOptions};
use crate::error::{Error, Result};
use crate::ir::{Graph, Model, Node, Op, TensorData, TensorId};
use crate::rng::Rng;

pub(crate) struct Outcome {
    pub model: Model,
    pub prunable: usize,
    pub removed: usize,
    /// Channels of the prunable groups before and after.
    pub channels: (usize, usize),
}

/// A tensor's last dimension: `repeat` copies of group `group`'s channels, channel fastest.
#[derive(Clone, Copy, Debug, PartialEq)]
struct View {
    group: usize,
    repeat: usize,
}

/// How a weighted node relates to the groups.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// CONV_2D or FULLY_CONNECTED: output channels form a group, input channels come from one.
    Dense { out: Option<View>, input: Option<View> },
    /// DEPTHWISE_CONV_2D with multiplier 1: one group through.
    Depthwise { group: Option<View> },
}

struct Analysis {
    parent: Vec<usize>,
    size: Vec<usize>,
    frozen: Vec<Option<String>>,
    views: Vec<Option<View>>,
    /// Constant operands sliced along their last axis with a group (per-channel MUL/ADD constants).
    constants: Vec<(TensorId, usize)>,
}

impl Analysis {
    fn find(&mut self, mut g: usize) -> usize {
        while self.parent[g] != g {
            self.parent[g] = self.parent[self.parent[g]];
            g = self.parent[g];
        }
        g
    }

    fn view(&mut self, t: TensorId) -> Option<View> {
        let v = self.views.get(t).copied().flatten()?;
        Some(View { group: self.find(v.group), repeat: v.repeat })
    }

    fn freeze(&mut self, t: TensorId, why: &str) {
        if let Some(v) = self.view(t) {
            self.frozen[v.group].get_or_insert_with(|| why.to_string());
        }
    }

    fn freeze_view(&mut self, v: Option<View>, why: &str) {
        if let Some(v) = v {
            let g = self.find(v.group);
            self.frozen[g].get_or_insert_with(|| why.to_string());
        }
    }

    /// The two tensors carry the same channels.
    fn tie(&mut self, a: TensorId, b: TensorId) {
        let (Some(va), Some(vb)) = (self.view(a), self.view(b)) else { return };
        if va.group == vb.group {
            return;
        }
        if self.size[va.group] != self.size[vb.group] || va.repeat != vb.repeat {
            self.freeze(a, "joins tensors of different channel counts");
            self.freeze(b, "joins tensors of different channel counts");
            return;
        }
        let (keep, gone) = (va.group, vb.group);
        self.parent[gone] = keep;
        if let Some(why) = self.frozen[gone].take() {
            self.frozen[keep].get_or_insert(why);
        }
    }
}

/// Ties or freezes the channel groups of node `i`'s tensors, and records the role of a weighted
/// layer.
fn visit(a: &mut Analysis, g: &Graph, i: usize, node: &Node, roles: &mut BTreeMap<usize, Role>) {
    let shape = |t: TensorId| &g.tensors[t].shape;
    let last = |t: TensorId| g.tensors[t].shape.last().copied().unwrap_or(0);
    let Some(out) = node.output() else { return };
    let x = node.input(0);
    let acts: Vec<TensorId> = node.inputs.iter().flatten().copied().filter(|&t| !g.tensors[t].is_constant()).collect();
    let freeze_all = |a: &mut Analysis, why: &str| {
        for &t in acts.iter().chain(&node.outputs) {
            a.freeze(t, why);
        }
    };
    match &node.op {
        Op::Conv2D(_) | Op::FullyConnected(_) => {
            let Some(x) = x else { return };
            let input = a.view(x).and_then(|v| {
                // A FULLY_CONNECTED reads `k` inputs per row: `k / C` copies of the channels.
                let k = node.input(1).and_then(|w| g.tensors[w].shape.last().copied()).unwrap_or(0);
                let c = a.size[v.group];
                match node.op {
                    Op::FullyConnected(_) if c > 0 && k.is_multiple_of(c) && k / c >= v.repeat => {
                        Some(View { group: v.group, repeat: k / c })
                    }
                    _ if v.repeat == 1 => Some(v),
                    _ => None,
                }
            });
            if input.is_none() {
                a.freeze(x, "feeds a layer whose input columns do not follow its channels");
            }
            roles.insert(i, Role::Dense { out: a.view(out), input });
        }
        Op::DepthwiseConv2D(_) => {
            let (Some(x), Some(w)) = (x, node.input(1)) else { return };
            if last(w) == last(x) {
                a.tie(x, out);
                roles.insert(i, Role::Depthwise { group: a.view(out) });
            } else {
                freeze_all(a, "passes through a depthwise convolution with a channel multiplier");
                roles.insert(i, Role::Depthwise { group: None });
            }
        }
        Op::Relu | Op::Relu6 | Op::Logistic | Op::Tanh | Op::LeakyRelu { .. } | Op::HardSwish => {
            if let Some(x) = x {
                a.tie(x, out);
            }
        }
        Op::AveragePool2D(_) | Op::MaxPool2D(_) => {
            if let Some(x) = x {
                a.tie(x, out);
            }
        }
        Op::Pad => {
            let pads = const_i64(g, node.input(1));
            let channel_padded = pads.as_ref().is_none_or(|p| p.len() < 2 || p[p.len() - 2..].iter().any(|&v| v != 0));
            match x {
                Some(x) if !channel_padded => a.tie(x, out),
                _ => freeze_all(a, "is padded along channels"),
            }
        }
        Op::Add { .. } | Op::Sub { .. } | Op::Mul { .. } => elementwise(a, g, node, out),
        Op::Concatenation { axis, .. } => {
            let rank = shape(out).len() as i32;
            let along_channels = *axis == -1 || *axis == rank - 1;
            if along_channels {
                freeze_all(a, "is concatenated along channels");
            } else {
                for &t in &acts {
                    a.tie(t, out);
                }
            }
        }
        Op::Mean { .. } | Op::ReduceMax { .. } => {
            let Some(x) = x else { return };
            let rank = shape(x).len() as i64;
            let axes = const_i64(g, node.input(1)).unwrap_or_default();
            let reduces_channels = axes.iter().any(|&ax| ax == -1 || ax == rank - 1) || axes.is_empty();
            if reduces_channels || last(out) != last(x) {
                freeze_all(a, "is reduced along channels");
            } else {
                a.tie(x, out);
            }
        }
        Op::Reshape { .. } | Op::Squeeze { .. } => {
            let Some(x) = x else { return };
            if !reshape(a, g, x, out) {
                freeze_all(a, "is reshaped across channels");
            }
        }
        _ => freeze_all(a, &format!("passes through {}", node.op.name())),
    }
}

/// ADD, SUB, MUL: activations with the output's channels share its group; a per-channel constant
/// follows the group; anything else broadcast against channels freezes it.
fn elementwise(a: &mut Analysis, g: &Graph, node: &Node, out: TensorId) {
    let last = |t: TensorId| g.tensors[t].shape.last().copied().unwrap_or(0);
    let c = last(out);
    for t in node.inputs.iter().flatten().copied() {
        let tensor = &g.tensors[t];
        if tensor.is_constant() {
            match tensor.num_elements() {
                1 => {}
                k if k == c && last(t) == c => {
                    if let Some(v) = a.view(out) {
                        a.constants.push((t, v.group));
                    }
                }
                _ => a.freeze(out, "is combined with a constant that is not per channel"),
            }
        } else if last(t) == c {
            a.tie(t, out);
        } else if last(t) != 1 {
            a.freeze(t, "is broadcast against channels");
            a.freeze(out, "is broadcast against channels");
        }
    }
}

/// RESHAPE / SQUEEZE keeping the channels last (tied), or a flatten (the output repeats the
/// channels once per position); false for anything else.
fn reshape(a: &mut Analysis, g: &Graph, x: TensorId, out: TensorId) -> bool {
    let (xs, os) = (g.tensors[x].shape.clone(), g.tensors[out].shape.clone());
    let batch = xs.first().copied().unwrap_or(1);
    let per_batch: usize = xs.iter().skip(1).product();
    if xs.len() >= 2 && os.last() == xs.last() {
        a.tie(x, out);
    } else if xs.len() >= 2
        && os.last() == Some(&per_batch)
        && os.iter().rev().skip(1).product::<usize>() == batch
        && a.view(x).is_some()
    {
        // A flatten: the output repeats the input's channels once per position.
        let v = a.view(x).expect("checked above");
        let inner: usize = xs[1..xs.len() - 1].iter().product();
        if let Some(old) = a.view(out) {
            a.freeze_view(Some(old), "replaced by a flatten view");
        }
        a.views[out] = Some(View { group: v.group, repeat: v.repeat * inner });
    } else {
        return false;
    }
    true
}

fn const_i64(g: &Graph, t: Option<TensorId>) -> Option<Vec<i64>> {
    t.and_then(|t| g.tensors[t].data.as_ref()).and_then(|d| d.to_i64_vec())
}

fn analyse(g: &Graph) -> (Analysis, BTreeMap<usize, Role>) {
    let n = g.tensors.len();
    let mut a = Analysis {
        parent: Vec::new(),
        size: Vec::new(),
        frozen: Vec::new(),
        views: vec![None; n],
        constants: Vec::new(),
    };
    for (t, tensor) in g.tensors.iter().enumerate() {
        if tensor.is_constant() || tensor.shape.is_empty() {
            continue;
        }
        let id = a.parent.len();
        a.parent.push(id);
        a.size.push(*tensor.shape.last().unwrap_or(&0));
        a.frozen.push(None);
        a.views[t] = Some(View { group: id, repeat: 1 });
    }
    for &t in &g.inputs {
        a.freeze(t, "is a model input");
    }
    for &t in &g.outputs {
        a.freeze(t, "is a model output");
    }
    let mut roles = BTreeMap::new();
    for (i, node) in g.nodes.iter().enumerate() {
        visit(&mut a, g, i, node, &mut roles);
    }
    (a, roles)
}

/// Weights of every weighted layer when group `g` keeps `kept[g]` channels.
fn total_weights(g: &Graph, roles: &BTreeMap<usize, Role>, kept: &[usize], a: &mut Analysis) -> usize {
    let mut total = 0;
    for (i, node) in g.nodes.iter().enumerate() {
        let Some(w) = node.input(1).map(|w| &g.tensors[w]) else { continue };
        if !crate::ops::is_weighted(&node.op) {
            continue;
        }
        let mut count = |v: Option<View>, full: usize| v.map_or(full, |v| kept[a.find(v.group)] * v.repeat);
        total += match (roles.get(&i), &node.op) {
            (Some(Role::Dense { out, input }), Op::Conv2D(_)) if w.shape.len() == 4 => {
                count(*out, w.shape[0]) * w.shape[1] * w.shape[2] * count(*input, w.shape[3])
            }
            (Some(Role::Dense { out, input }), Op::FullyConnected(_)) if w.shape.len() == 2 => {
                count(*out, w.shape[0]) * count(*input, w.shape[1])
            }
            (Some(Role::Depthwise { group }), _) if w.shape.len() == 4 => {
                w.shape[1] * w.shape[2] * count(*group, w.shape[3])
            }
            _ => w.num_elements(),
        };
    }
    total
}

pub(crate) fn prune(
    model: &Model,
    layers: &[Layer],
    scores: &Scores,
    options: &PruneOptions,
    notes: &mut Vec<String>,
) -> Result<Outcome> {
    let g = model.main();
    let (mut a, roles) = analyse(g);
    let groups = a.parent.len();
    let roots: Vec<usize> = (0..groups).filter(|&x| a.find(x) == x).collect();
    let (mut channel_scores, producers) = group_scores(&mut a, layers, scores, &roles, options.method);
    let mut rng = Rng::new(options.seed ^ 0xc4a7_7e15);
    let mut candidates: Vec<usize> = Vec::new();
    let mut frozen_reasons: BTreeMap<String, usize> = BTreeMap::new();
    for &r in &roots {
        let has_producer = producers.get(&r).copied().unwrap_or(0) > 0;
        match (&a.frozen[r], has_producer) {
            (None, true) if a.size[r] > 1 => candidates.push(r),
            (Some(why), true) => *frozen_reasons.entry(why.clone()).or_default() += 1,
            _ => {}
        }
    }
    for &r in &candidates {
        let s = channel_scores.get_mut(&r).expect("candidates have producers");
        let p = producers[&r] as f64;
        for v in s.iter_mut() {
            *v = match options.method {
                Method::GlobalMagnitude | Method::LayerMagnitude => *v / p,
                Method::Random => rng.uniform() as f64,
                _ => *v,
            };
        }
    }
    let full: Vec<usize> = (0..groups).map(|x| a.size[x]).collect();
    let prunable = total_weights(g, &roles, &full, &mut a);
    // Per candidate group, its channels from least to most important.
    let order: BTreeMap<usize, Vec<usize>> = candidates
        .iter()
        .map(|&r| {
            let s = &channel_scores[&r];
            let mut o: Vec<usize> = (0..s.len()).collect();
            o.sort_by(|&x, &y| s[x].total_cmp(&s[y]).then(x.cmp(&y)));
            (r, o)
        })
        .collect();
    let removed_count =
        choose_removals(&mut a, g, &roles, &candidates, &channel_scores, options.method.is_global(), options.sparsity);
    // Kept channel indices (ascending) of each pruned group.
    let mut keep: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (&r, &n) in &removed_count {
        if n > 0 {
            let mut k: Vec<usize> = order[&r][n..].to_vec();
            k.sort_unstable();
            keep.insert(r, k);
        }
    }
    let kept = kept_of(&full, &removed_count);
    let after = total_weights(g, &roles, &kept, &mut a);
    let before_channels: usize = candidates.iter().map(|&r| a.size[r]).sum();
    let after_channels: usize = candidates.iter().map(|&r| kept[r]).sum();
    if !frozen_reasons.is_empty() {
        let list: Vec<String> = frozen_reasons
            .iter()
            .map(|(why, n)| format!("{n} group{} (a tensor {why})", if *n == 1 { "" } else { "s" }))
            .collect();
        notes.push(format!("channel groups kept whole: {}", list.join("; ")));
    }
    notes.push(format!(
        "{} of {} channels removed from {} prunable channel groups",
        before_channels - after_channels,
        before_channels,
        candidates.len()
    ));
    let model = rewrite(model, &mut a, &roles, &keep)?;
    Ok(Outcome { model, prunable, removed: prunable - after, channels: (before_channels, after_channels) })
}

/// Channel scores per group, from the layers producing (and depthwise-filtering) it, and how many
/// layers produce each group.
fn group_scores(
    a: &mut Analysis,
    layers: &[Layer],
    scores: &Scores,
    roles: &BTreeMap<usize, Role>,
    method: Method,
) -> (BTreeMap<usize, Vec<f64>>, BTreeMap<usize, usize>) {
    let layer_of: BTreeMap<usize, usize> = layers.iter().enumerate().map(|(k, l)| (l.node, k)).collect();
    let mut channel_scores: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut producers: BTreeMap<usize, usize> = BTreeMap::new();
    for (&i, role) in roles {
        let Some(&k) = layer_of.get(&i) else { continue };
        let s = &scores.weights[k];
        let (view, depthwise) = match *role {
            Role::Dense { out, .. } => (out, false),
            Role::Depthwise { group } => (group, true),
        };
        let Some(v) = view.filter(|v| v.repeat == 1) else { continue };
        let root = a.find(v.group);
        let c = a.size[root];
        if c == 0 || !s.len().is_multiple_of(c) {
            continue;
        }
        let per = s.len() / c;
        let entry = channel_scores.entry(root).or_insert_with(|| vec![0.0; c]);
        for (ch, e) in entry.iter_mut().enumerate() {
            let row: f64 = if depthwise {
                (0..per).map(|t| s[t * c + ch] as f64).sum()
            } else {
                s[ch * per..(ch + 1) * per].iter().map(|&v| v as f64).sum()
            };
            // Magnitude: mean |w| of the producers' rows; gradient: the summed Taylor scores.
            *e += if matches!(method, Method::GlobalMagnitude | Method::LayerMagnitude) {
                if depthwise {
                    0.0
                } else {
                    row / per as f64
                }
            } else {
                row
            };
        }
        if !depthwise {
            *producers.entry(root).or_default() += 1;
        }
    }
    (channel_scores, producers)
}

/// The channels of each kept channel count `full` less those `removed` from candidate groups.
fn kept_of(full: &[usize], removed: &BTreeMap<usize, usize>) -> Vec<usize> {
    let mut k = full.to_vec();
    for (&r, &n) in removed {
        k[r] -= n;
    }
    k
}

/// How many channels to remove from each candidate group to reach `sparsity` of the prunable
/// weights: globally the lowest-scored channels first, layer-wise the same fraction of every group.
/// A group always keeps one channel.
fn choose_removals(
    a: &mut Analysis,
    g: &Graph,
    roles: &BTreeMap<usize, Role>,
    candidates: &[usize],
    channel_scores: &BTreeMap<usize, Vec<f64>>,
    global: bool,
    sparsity: f64,
) -> BTreeMap<usize, usize> {
    let full = a.size.clone();
    let prunable = total_weights(g, roles, &full, a);
    let target = (sparsity * prunable as f64).round() as usize;
    let mut removed_count: BTreeMap<usize, usize> = candidates.iter().map(|&r| (r, 0)).collect();
    if global {
        let mut all: Vec<(f64, usize, usize)> = candidates
            .iter()
            .flat_map(|&r| channel_scores[&r].iter().enumerate().map(move |(c, &s)| (s, r, c)))
            .collect();
        all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut removed_weights = 0;
        for &(_, r, _) in &all {
            if removed_weights >= target {
                break;
            }
            if removed_count[&r] + 1 >= a.size[r] {
                continue;
            }
            *removed_count.get_mut(&r).expect("candidate") += 1;
            removed_weights = prunable - total_weights(g, roles, &kept_of(&full, &removed_count), a);
        }
    } else {
        // The same fraction of every group: the smallest fraction that reaches the target.
        let sizes = a.size.clone();
        let counts = |frac: f64| -> BTreeMap<usize, usize> {
            candidates.iter().map(|&r| (r, ((frac * sizes[r] as f64).round() as usize).min(sizes[r] - 1))).collect()
        };
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..40 {
            let mid = (lo + hi) / 2.0;
            let removed = prunable - total_weights(g, roles, &kept_of(&full, &counts(mid)), a);
            if removed >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        removed_count = counts(hi);
    }
    removed_count
}

/// Indices kept along a last dimension of `repeat` copies of `c` channels.
fn expand(keep: &[usize], c: usize, repeat: usize) -> Vec<usize> {
    (0..repeat).flat_map(|r| keep.iter().map(move |&k| r * c + k)).collect()
}

/// `values` of `shape` restricted to indices `keep` along `axis`.
fn slice_axis(values: &[f32], shape: &[usize], axis: usize, keep: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let dim = shape[axis];
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            let start = (o * dim + k) * inner;
            out.extend_from_slice(&values[start..start + inner]);
        }
    }
    let mut s = shape.to_vec();
    s[axis] = keep.len();
    (out, s)
}

fn rewrite(
    model: &Model,
    a: &mut Analysis,
    roles: &BTreeMap<usize, Role>,
    keep: &BTreeMap<usize, Vec<usize>>,
) -> Result<Model> {
    let mut out = model.clone();
    let g = model.main();
    let kept_view = |a: &mut Analysis, v: Option<View>| -> Option<Vec<usize>> {
        let v = v?;
        let r = a.find(v.group);
        keep.get(&r).map(|k| expand(k, a.size[r], v.repeat))
    };
    let mut new_consts: Vec<(TensorId, Vec<f32>, Vec<usize>)> = Vec::new();
    let mut slice_const = |t: TensorId, cuts: &[(usize, Vec<usize>)]| -> Result<()> {
        let mut v = values(g, t);
        let mut shape = g.tensors[t].shape.clone();
        if v.len() != shape.iter().product::<usize>() {
            return Err(Error::graph("a pruned constant is not float", g.tensor_loc(t)));
        }
        for (axis, k) in cuts {
            (v, shape) = slice_axis(&v, &shape, *axis, k);
        }
        new_consts.push((t, v, shape));
        Ok(())
    };
    for (&i, role) in roles {
        let node = &g.nodes[i];
        let (Some(w), b) = (node.input(1), node.input(2)) else { continue };
        let rank = g.tensors[w].shape.len();
        let (out_keep, in_keep, out_axis) = match *role {
            Role::Dense { out, input } => (kept_view(a, out), kept_view(a, input), 0),
            Role::Depthwise { group } => (kept_view(a, group), None, rank.saturating_sub(1)),
        };
        let mut cuts = Vec::new();
        if let Some(k) = &out_keep {
            cuts.push((out_axis, k.clone()));
        }
        if let Some(k) = in_keep {
            cuts.push((rank - 1, k));
        }
        if !cuts.is_empty() {
            slice_const(w, &cuts)?;
        }
        if let (Some(b), Some(k)) = (b, out_keep) {
            slice_const(b, &[(0, k)])?;
        }
    }
    let constants = a.constants.clone();
    for (t, group) in constants {
        if let Some(k) = kept_view(a, Some(View { group, repeat: 1 })) {
            let axis = g.tensors[t].shape.len() - 1;
            slice_const(t, &[(axis, k)])?;
        }
    }
    let og = out.main_mut();
    for (t, v, shape) in new_consts {
        og.tensors[t].data = TensorData::from_f32(&shape, v);
        og.tensors[t].shape = shape;
    }
    // Activation shapes: the last dimension of every tensor in a pruned group.
    for t in 0..og.tensors.len() {
        let Some(v) = a.view(t) else { continue };
        if let Some(k) = keep.get(&v.group) {
            let n = k.len() * v.repeat;
            let tensor = &mut og.tensors[t];
            if let Some(d) = tensor.shape.last_mut() {
                *d = n;
            }
            if let Some(d) = tensor.shape_signature.as_mut().and_then(|s| s.last_mut()) {
                if *d >= 0 {
                    *d = n as i64;
                }
            }
        }
    }
    // RESHAPE targets follow their (possibly narrower) outputs.
    for i in 0..og.nodes.len() {
        let Op::Reshape { new_shape } = &og.nodes[i].op else { continue };
        let Some(o) = og.nodes[i].output() else { continue };
        let target: Vec<usize> = og.tensors[o].shape.clone();
        let fix = |old: &[i64]| -> Vec<i64> {
            if old.len() != target.len() {
                return target.iter().map(|&d| d as i64).collect();
            }
            old.iter().zip(&target).map(|(&o, &t)| if o < 0 { o } else { t as i64 }).collect()
        };
        if let Some(ns) = new_shape {
            let fixed: Vec<i32> =
                fix(&ns.iter().map(|&v| v as i64).collect::<Vec<_>>()).iter().map(|&v| v as i32).collect();
            og.nodes[i].op = Op::Reshape { new_shape: Some(fixed) };
        }
        if let Some(st) = og.nodes[i].input(1) {
            if let Some(old) = og.tensors[st].data.as_ref().and_then(|d| d.to_i64_vec()) {
                let fixed = fix(&old);
                let len = [fixed.len()];
                og.tensors[st].data = match og.tensors[st].data {
                    Some(TensorData::I64(_)) => {
                        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&len), fixed).ok().map(TensorData::I64)
                    }
                    _ => TensorData::from_i32(&len, fixed.iter().map(|&v| v as i32).collect()),
                };
            }
        }
    }
    Ok(out)
}
