//! Graphs of operators over tensors, and the model that holds them.

use super::{Op, Tensor, TensorData};
use crate::error::{Error, Location, Result};

/// Index of a tensor in its graph's `tensors`.
pub type TensorId = usize;

/// One operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    /// Operand tensors; `None` marks an omitted optional operand (e.g. a missing bias).
    pub inputs: Vec<Option<TensorId>>,
    pub outputs: Vec<TensorId>,
    /// Internal tensors the source format records for the operator (e.g. the quantization of an
    /// int8 LSTM's gate outputs); they are not operands.
    pub intermediates: Vec<TensorId>,
    /// The operator version recorded by the source format, if any. Writers may raise it to what the
    /// node's types need.
    pub version: Option<u32>,
}

impl Node {
    pub fn new(op: Op, inputs: Vec<Option<TensorId>>, outputs: Vec<TensorId>) -> Self {
        Node { op, inputs, outputs, intermediates: Vec::new(), version: None }
    }

    /// Operand `i`, if present.
    pub fn input(&self, i: usize) -> Option<TensorId> {
        self.inputs.get(i).copied().flatten()
    }

    /// The first output (every supported operator has exactly one).
    pub fn output(&self) -> Option<TensorId> {
        self.outputs.first().copied()
    }
}

/// A graph: tensors, and the operators that compute them in execution order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    pub name: String,
    pub tensors: Vec<Tensor>,
    pub nodes: Vec<Node>,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

impl Graph {
    pub fn tensor(&self, id: TensorId) -> &Tensor {
        &self.tensors[id]
    }

    pub fn add_tensor(&mut self, t: Tensor) -> TensorId {
        self.tensors.push(t);
        self.tensors.len() - 1
    }

    /// Which tensors something refers to: the graph's inputs and outputs, `keep`, and every
    /// node's operands, outputs and intermediates.
    pub fn used_tensors(&self, keep: &[TensorId]) -> Vec<bool> {
        let mut used = vec![false; self.tensors.len()];
        let mut mark = |t: TensorId| {
            if let Some(u) = used.get_mut(t) {
                *u = true;
            }
        };
        self.inputs.iter().chain(&self.outputs).chain(keep).for_each(|&t| mark(t));
        for n in &self.nodes {
            n.inputs.iter().flatten().chain(&n.outputs).chain(&n.intermediates).for_each(|&t| mark(t));
        }
        used
    }

    /// Drops the tensors nothing refers to (besides `keep`), keeping the others in order, as the
    /// `.tflite` writer does: a model and its written form then number tensors alike. Returns the
    /// new id of every old tensor (`usize::MAX` for a dropped one).
    pub fn drop_unused_tensors(&mut self, keep: &[TensorId]) -> Vec<usize> {
        let used = self.used_tensors(keep);
        let mut remap = vec![usize::MAX; self.tensors.len()];
        let mut next = 0;
        for (i, &u) in used.iter().enumerate() {
            if u {
                remap[i] = next;
                next += 1;
            }
        }
        let mut i = 0;
        self.tensors.retain(|_| {
            i += 1;
            used[i - 1]
        });
        let map = |t: &mut TensorId| *t = remap[*t];
        self.inputs.iter_mut().chain(self.outputs.iter_mut()).for_each(map);
        for n in &mut self.nodes {
            n.inputs.iter_mut().flatten().chain(n.outputs.iter_mut()).chain(n.intermediates.iter_mut()).for_each(map);
        }
        remap
    }

    /// Location of node `i`, for errors.
    pub fn node_loc(&self, i: usize) -> Location {
        let mut loc = Location::node(i, self.nodes.get(i).map(|n| n.op.name()).unwrap_or("?"));
        if let Some(out) = self.nodes.get(i).and_then(|n| n.output()) {
            if let Some(t) = self.tensors.get(out) {
                loc.tensor = Some(out);
                loc.tensor_name = Some(t.name.clone());
            }
        }
        loc
    }

    pub fn tensor_loc(&self, id: TensorId) -> Location {
        Location::tensor(id, self.tensors.get(id).map(|t| t.name.as_str()).unwrap_or(""))
    }

    /// For each tensor, the node that produces it (if any).
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.tensors.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &o in &n.outputs {
                if o < p.len() {
                    p[o] = Some(i);
                }
            }
        }
        p
    }

    /// For each tensor, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut c = vec![Vec::new(); self.tensors.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for t in n.inputs.iter().flatten() {
                if *t < c.len() && !c[*t].contains(&i) {
                    c[*t].push(i);
                }
            }
        }
        c
    }

    /// Checks references and execution order: every tensor index is in range, every operand is a
    /// constant, a graph input, a variable or the output of an earlier node, every tensor is written
    /// at most once, and constants are never written.
    pub fn validate(&self) -> Result<()> {
        let n = self.tensors.len();
        for (k, &t) in self.inputs.iter().chain(self.outputs.iter()).enumerate() {
            if t >= n {
                let which = if k < self.inputs.len() { "input" } else { "output" };
                return Err(Error::graph(
                    format!("graph {which} refers to tensor {t}, but the graph has {n} tensors"),
                    Location::default(),
                ));
            }
        }
        for (id, t) in self.tensors.iter().enumerate() {
            let Some(data) = &t.data else { continue };
            let expected = match (data, t.dtype.size_of()) {
                (TensorData::Raw(_), Some(size)) => Some((data.byte_len(), t.num_elements() * size)),
                (TensorData::Raw(_), None) => None,
                _ => Some((data.len(), t.num_elements())),
            };
            if let Some((have, want)) = expected.filter(|(have, want)| have != want) {
                let unit = if matches!(data, TensorData::Raw(_)) { "bytes" } else { "elements" };
                return Err(Error::graph(
                    format!(
                        "constant has {have} {unit} of data but its shape {:?} of {} needs {want}",
                        t.shape, t.dtype
                    ),
                    self.tensor_loc(id),
                ));
            }
        }
        let mut ready = vec![false; n];
        for &i in &self.inputs {
            ready[i] = true;
        }
        for (id, t) in self.tensors.iter().enumerate() {
            if t.is_constant() || t.is_variable {
                ready[id] = true;
            }
        }
        let mut written = vec![false; n];
        for (i, node) in self.nodes.iter().enumerate() {
            for t in node.inputs.iter().flatten() {
                if *t >= n {
                    return Err(Error::graph(
                        format!("operand refers to tensor {t}, but the graph has {n} tensors"),
                        self.node_loc(i),
                    ));
                }
                if !ready[*t] {
                    return Err(Error::graph(
                        format!(
                            "operand tensor {t} '{}' is read before any operator computes it",
                            self.tensors[*t].name
                        ),
                        self.node_loc(i),
                    ));
                }
            }
            for &o in &node.outputs {
                if o >= n {
                    return Err(Error::graph(
                        format!("output refers to tensor {o}, but the graph has {n} tensors"),
                        Location::node(i, node.op.name()),
                    ));
                }
                if self.tensors[o].is_constant() {
                    return Err(Error::graph(
                        format!("operator writes to constant tensor {o} '{}'", self.tensors[o].name),
                        self.node_loc(i),
                    ));
                }
                if written[o] || self.inputs.contains(&o) {
                    return Err(Error::graph(
                        format!("tensor {o} '{}' is written more than once", self.tensors[o].name),
                        self.node_loc(i),
                    ));
                }
                written[o] = true;
                ready[o] = true;
            }
        }
        for &o in &self.outputs {
            if !ready[o] {
                return Err(Error::graph(
                    format!("graph output tensor {o} '{}' is never computed", self.tensors[o].name),
                    self.tensor_loc(o),
                ));
            }
        }
        Ok(())
    }
}

/// A named mapping of signature inputs/outputs to tensors (TFLite SignatureDef).
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub key: String,
    pub graph: usize,
    pub inputs: Vec<(String, TensorId)>,
    pub outputs: Vec<(String, TensorId)>,
}

/// A model: its graphs (the first is the main graph), plus descriptive data carried through.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    pub graphs: Vec<Graph>,
    pub description: String,
    /// Named binary metadata (e.g. TFLite's `min_runtime_version`), kept as read.
    pub metadata: Vec<(String, Vec<u8>)>,
    pub signatures: Vec<Signature>,
}

impl Model {
    /// The main graph. Every model that reads or validates has one.
    pub fn main(&self) -> &Graph {
        &self.graphs[0]
    }

    pub fn main_mut(&mut self) -> &mut Graph {
        &mut self.graphs[0]
    }

    /// The tensors of a signature of graph `gi`.
    pub fn signature_tensors(&self, gi: usize) -> Vec<TensorId> {
        self.signatures
            .iter()
            .filter(|s| s.graph == gi)
            .flat_map(|s| s.inputs.iter().chain(s.outputs.iter()).map(|(_, t)| *t))
            .collect()
    }

    /// [`Graph::drop_unused_tensors`] on every graph, signatures renumbered.
    pub fn drop_unused_tensors(&mut self) {
        for gi in 0..self.graphs.len() {
            let keep = self.signature_tensors(gi);
            let remap = self.graphs[gi].drop_unused_tensors(&keep);
            for s in self.signatures.iter_mut().filter(|s| s.graph == gi) {
                s.inputs.iter_mut().chain(s.outputs.iter_mut()).for_each(|(_, t)| *t = remap[*t]);
            }
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.graphs.is_empty() {
            return Err(Error::graph("model has no graphs", Location::default()));
        }
        for g in &self.graphs {
            g.validate()?;
        }
        self.signatures.iter().try_for_each(|s| self.validate_signature(s))
    }

    /// A signature names an existing graph and, for each of its entries, a tensor of that graph.
    fn validate_signature(&self, s: &Signature) -> Result<()> {
        let Some(g) = self.graphs.get(s.graph) else {
            let n = self.graphs.len();
            return Err(Error::graph(
                format!("signature '{}' refers to graph {}, but the model has {n} graphs", s.key, s.graph),
                Location::default(),
            ));
        };
        let n = g.tensors.len();
        match s.inputs.iter().chain(&s.outputs).find(|(_, t)| *t >= n) {
            Some((name, t)) => Err(Error::graph(
                format!("signature '{}' maps '{name}' to tensor {t}, but graph {} has {n} tensors", s.key, s.graph),
                Location::default(),
            )),
            None => Ok(()),
        }
    }
}
