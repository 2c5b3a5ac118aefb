//! Batch runs on every core: [`RunJob`] splits `[N, ...input shape]` samples into chunks that
//! workers run ([`Run`]), batched where the model allows it, and joins the outputs in order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::batch::{concat, samples_in};
use super::Buffer;
use crate::error::{Error, Result};
use crate::ir::{DType, Graph, Model, Tensor};
use crate::npy::{self, NpyArray, NpyData};
use crate::parallel::{chunks, decode, encode, Job, Resource, ResourceId, Resources, Round, Samples, Task, Worker};

/// Samples per run task.
const CHUNK: usize = 32;

/// Run samples `samples` of the data; returns one `.npy` per output (`[rows, ...output shape]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub model: ResourceId,
    pub data: ResourceId,
    pub samples: (usize, usize),
    /// Keep the model's own output types (e.g. int8) instead of dequantizing to f32.
    pub raw: bool,
    /// Run the samples one after another carrying the model's recurrent state (streaming).
    pub streaming: bool,
    /// The data are float values for every model (evaluation): never passed through as integers.
    pub floats: bool,
}

impl Run {
    pub fn run(&self, w: &mut Worker) -> Result<Vec<u8>> {
        let rows = self.rows(w)?;
        self.run_rows(w, &rows)
    }

    /// This task's samples of the data: only their bytes are decoded, so each worker reads its own
    /// share of the data.
    pub fn rows(&self, w: &mut Worker) -> Result<NpyData> {
        let per = per_sample(w, self.model)?;
        w.rows(self.data, per, self.samples)
    }

    /// Runs the model on `rows` (what [`Run::rows`] read); returns one `.npy` per output.
    pub fn run_rows(&self, w: &mut Worker, rows: &NpyData) -> Result<Vec<u8>> {
        let m = w.model(self.model)?;
        let g = m.main();
        let input = first_input(g)?;
        let per = input.num_elements().max(1);
        let integers = !self.floats && matches!(input.dtype, DType::I8 | DType::U8);
        let floats;
        let samples = match (rows, input.dtype) {
            (NpyData::I8(v), DType::I8) if integers => Samples::I8(v),
            (NpyData::U8(v), DType::U8) if integers => Samples::U8(v),
            (NpyData::F32(v), _) => Samples::F32(v),
            (d, _) => {
                floats = d.to_f32();
                Samples::F32(&floats)
            }
        };
        let mut outs: Vec<Vec<Buffer>> = vec![Vec::new(); g.outputs.len()];
        let mut keep = |it: &crate::exec::Interpreter| {
            for (k, o) in outs.iter_mut().enumerate() {
                let b = if self.raw { it.output(k).cloned() } else { it.output_f32(k).map(Buffer::F32) };
                o.push(b.unwrap_or_default());
            }
        };
        if self.streaming {
            let e = w.engine(self.model, 1)?.ok_or_else(|| Error::argument("the model does not compile"))?;
            let mut it = crate::exec::Interpreter::from_parts(e.0.clone(), e.1.clone());
            for r in 0..self.samples.1 - self.samples.0 {
                samples.set_one(&mut it, r, per)?;
                it.invoke()?;
                keep(&it);
            }
        } else {
            w.forward_input(self.model, samples, per, |it, _, _| {
                keep(it);
                Ok(())
            })?;
        }
        let rows = self.samples.1 - self.samples.0;
        let arrays = outs
            .into_iter()
            .map(|bufs| {
                let data = concat(bufs)?;
                let per_row = data.len() / rows.max(1);
                NpyArray::new(vec![rows, per_row], data).map(|a| npy::write(&a))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(encode(&arrays))
    }
}

/// Values per sample of model `model`'s (first) input.
fn per_sample(w: &mut Worker, model: ResourceId) -> Result<usize> {
    Ok(first_input(w.model(model)?.main())?.num_elements().max(1))
}

/// The graph's first input: the one the samples feed.
fn first_input(g: &Graph) -> Result<&Tensor> {
    g.inputs.first().map(|&t| &g.tensors[t]).ok_or_else(|| Error::input("the model has no input"))
}

/// Runs every sample of `x` through `model` in chunks; the result has one array per output.
pub struct RunJob {
    res: Resources,
    model: ResourceId,
    data: ResourceId,
    n: usize,
    raw: bool,
    /// Per output: the shape of one sample's output.
    shapes: Vec<Vec<usize>>,
    streaming: bool,
    parts: Option<Vec<Vec<Vec<u8>>>>,
}

impl RunJob {
    /// With `streaming`, a model with recurrent state (e.g. an LSTM over frames) runs the samples
    /// in order carrying its state; otherwise every sample starts from zero state.
    pub fn new(model: Arc<Model>, x: &NpyArray, raw: bool, streaming: bool) -> Result<RunJob> {
        let g = model.main();
        if g.inputs.len() != 1 {
            return Err(Error::input(format!("the model has {} inputs; batch runs support one", g.inputs.len())));
        }
        let n = samples_in(&x.shape, &g.tensors[g.inputs[0]].shape, "the input array")?;
        if let NpyData::F32(v) = &x.data {
            if let Some(pos) = v.iter().position(|v| !v.is_finite()) {
                let per = v.len() / n.max(1);
                return Err(Error::input(format!(
                    "sample {}: element {} is {}",
                    pos / per.max(1),
                    pos % per.max(1),
                    v[pos]
                )));
            }
        }
        let facts = crate::ops::infer(g, &Default::default())?;
        let shapes = g
            .outputs
            .iter()
            .map(|&o| {
                let s = facts.get(o).map_or_else(Vec::new, |f| f.shape.clone());
                if s.first() == Some(&1) {
                    s[1..].to_vec()
                } else {
                    s
                }
            })
            .collect();
        let streaming = streaming && super::stateful(g);
        let mut res = Resources::default();
        let model_id = res.add(Resource::Model(model));
        let data = res.add_bytes(npy::write(x));
        Ok(RunJob { res, model: model_id, data, n, raw, shapes, streaming, parts: None })
    }

    /// One array per model output, `[N, ...output shape]`.
    pub fn finish(self) -> Result<Vec<NpyArray>> {
        let parts = self.parts.ok_or_else(|| Error::argument("the run did not finish"))?;
        let mut per_output: Vec<Vec<NpyArray>> = vec![Vec::new(); self.shapes.len()];
        for chunk in parts {
            for (k, bytes) in chunk.iter().enumerate().take(self.shapes.len()) {
                per_output[k].push(npy::read(bytes)?);
            }
        }
        per_output
            .into_iter()
            .zip(&self.shapes)
            .map(|(arrays, shape)| {
                let bufs = arrays.into_iter().map(|a| buffer_of(a.data)).collect();
                let mut full = vec![self.n];
                full.extend_from_slice(shape);
                NpyArray::new(full, concat(bufs)?)
            })
            .collect()
    }
}

impl Job for RunJob {
    fn next(&mut self) -> Result<Option<Round>> {
        if self.parts.is_some() {
            return Ok(None);
        }
        // Streaming runs the samples in order on one state, in one task.
        let parts = chunks(0..self.n, if self.streaming { self.n.max(1) } else { CHUNK });
        let (model, data, raw, streaming) = (self.model, self.data, self.raw, self.streaming);
        let tasks = parts
            .iter()
            .map(|&samples| encode(&Task::Run(Run { model, data, samples, raw, streaming, floats: false })))
            .collect();
        Ok(Some(Round::over_samples("run", self.res.take(), tasks, &parts)))
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        let parts = results.iter().map(|r| decode::<Vec<Vec<u8>>>(r, "outputs")).collect::<Result<_>>()?;
        self.parts = Some(parts);
        Ok(())
    }
}

/// The values of an array read back from a task.
fn buffer_of(d: NpyData) -> Buffer {
    match d {
        NpyData::F32(v) => Buffer::F32(v),
        NpyData::F64(v) => Buffer::F32(v.into_iter().map(|x| x as f32).collect()),
        NpyData::I8(v) => Buffer::I8(v),
        NpyData::U8(v) => Buffer::U8(v),
        NpyData::I32(v) => Buffer::I32(v),
        NpyData::I64(v) => Buffer::I64(v),
    }
}
