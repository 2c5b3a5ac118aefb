//! One engine instance's side of a job: the shared inputs it was sent, what it derived from them,
//! and the tasks it runs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{decode, Resource, ResourceId};
use crate::error::{Error, Result};
use crate::exec::{Interpreter, Params, Plan, PlanOptions};
use crate::ir::{DType, Model};
use crate::npy::{self, NpyData};

/// Every kind of task, with its inputs. Each kind's work is written beside the job that uses it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Task {
    Calibrate(crate::quantize::tasks::Calibrate),
    Score(crate::quantize::tasks::Score),
    Measure(crate::quantize::tasks::Measure),
    Run(crate::exec::tasks::Run),
    Time(crate::evaluate::tasks::Time),
    Gradients(crate::grad::tasks::GradientTask),
    Train(crate::train::tasks::TrainStep),
    Evaluate(crate::evaluate::tasks::Chunk),
}

/// A compiled model: its plan and parameters for a batch size.
pub type Engine = (Arc<Plan>, Arc<Params>);

type CacheKey = (ResourceId, TypeId, usize);

/// Interpreters a worker keeps between tasks: each holds a buffer for every activation of its
/// model (for a batch), and allocating them zeroed for every task cost as much as running a layer.
const IDLE_INTERPRETERS: usize = 2;

/// Chunks of samples a worker keeps quantized for an integer model input: `auto` scores every
/// candidate on the same held-out chunks, and the candidates share their input parameters.
const QUANTIZED_CHUNKS: usize = 4;

/// Data resource, rows, input type, scale (bits) and zero point of quantized samples.
type QuantizedKey = (ResourceId, (usize, usize), crate::ir::DType, u32, i64);

/// The resources an engine instance holds and what it derived from them.
#[derive(Default)]
pub struct Worker {
    resources: HashMap<ResourceId, Resource>,
    cache: HashMap<CacheKey, Arc<dyn Any + Send + Sync>>,
    /// Interpreters from earlier tasks with the resource and batch size they run, latest first.
    idle: Vec<(ResourceId, usize, Interpreter)>,
    /// Samples quantized for a model input, latest first.
    quantized: Vec<(QuantizedKey, Arc<crate::exec::Buffer>)>,
}

impl Worker {
    /// Stores a shared input (replacing one with the same id and what was derived from it).
    pub fn put(&mut self, id: ResourceId, r: Resource) {
        self.cache.retain(|k, _| k.0 != id);
        self.idle.retain(|(i, ..)| *i != id);
        self.quantized.retain(|(k, _)| k.0 != id);
        if let Resource::Compiled(_, e) = &r {
            // What `engine(id, 1)` would compile, and the parameter store it would make.
            let plan: Option<Arc<Plan>> = Some(e.0.clone());
            self.cache.insert((id, TypeId::of::<Option<Arc<Plan>>>(), 1), Arc::new(plan));
            self.cache.insert((id, TypeId::of::<Params>(), 0), e.1.clone());
        }
        self.resources.insert(id, r);
    }

    /// Runs an encoded [`Task`]; returns its encoded result.
    pub fn run(&mut self, task: &[u8]) -> Result<Vec<u8>> {
        match decode::<Task>(task, "task")? {
            Task::Calibrate(t) => t.run(self),
            Task::Score(t) => t.run(self),
            Task::Measure(t) => t.run(self),
            Task::Run(t) => t.run(self),
            Task::Time(t) => t.run(self),
            Task::Gradients(t) => t.run(self),
            Task::Train(t) => t.run(self),
            Task::Evaluate(t) => t.run(self),
        }
    }

    fn resource(&self, id: ResourceId) -> Result<&Resource> {
        self.resources.get(&id).ok_or_else(|| Error::argument(format!("resource {id} was never sent to this worker")))
    }

    /// A value derived from resource `id` (and `extra`), made once and cached.
    pub fn derived<T: Any + Send + Sync>(
        &mut self,
        id: ResourceId,
        extra: usize,
        make: impl FnOnce(&mut Self, &[u8]) -> Result<T>,
    ) -> Result<Arc<T>> {
        let key = (id, TypeId::of::<T>(), extra);
        if let Some(v) = self.cache.get(&key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return Ok(v);
        }
        let raw = match self.resource(id)? {
            Resource::Bytes(b) => b.clone(),
            Resource::Model(_) | Resource::Compiled(..) | Resource::Written(..) => Arc::default(),
        };
        let v = Arc::new(make(self, &raw)?);
        self.cache.insert(key, v.clone());
        Ok(v)
    }

    /// A model resource (in memory, or `.tflite` bytes read once).
    pub fn model(&mut self, id: ResourceId) -> Result<Arc<Model>> {
        if let Resource::Model(m) | Resource::Compiled(m, _) | Resource::Written(m, _) = self.resource(id)? {
            return Ok(m.clone());
        }
        self.derived(id, 0, |_, b| crate::tflite::read(b))
    }

    /// A `.npy` resource as float values, read once (float32 data is not copied again).
    pub fn floats(&mut self, id: ResourceId) -> Result<Arc<Vec<f32>>> {
        self.derived(id, 0, |_, b| {
            let a = npy::read(b)?;
            Ok(match a.data {
                npy::NpyData::F32(v) => v,
                _ => a.to_f32(),
            })
        })
    }

    /// Rows `rows` (of `per` elements each) of a `.npy` resource: only their bytes are decoded, so
    /// each worker reads just its share of a large array (the values are [`npy::read`]'s).
    pub fn rows(&mut self, id: ResourceId, per: usize, rows: (usize, usize)) -> Result<NpyData> {
        let h = self.derived(id, 0, |_, b| npy::checked_header(b))?;
        let bytes = match self.resource(id)? {
            Resource::Bytes(b) => b.clone(),
            _ => return Err(Error::argument(format!("resource {id} is a model, not an array"))),
        };
        let total = crate::budget::elements_u64(&h.shape).unwrap_or(u64::MAX);
        let at = |r: usize| r.checked_mul(per).filter(|&e| e as u64 <= total);
        let Some((Some(lo), Some(hi))) = (rows.0 <= rows.1).then(|| (at(rows.0), at(rows.1))) else {
            return Err(Error::input(format!("the data holds too few values for samples {rows:?} of {per} values")));
        };
        npy::read_elements(&bytes, &h, lo..hi)
    }

    /// [`Worker::rows`] as float values.
    pub fn float_rows(&mut self, id: ResourceId, per: usize, rows: (usize, usize)) -> Result<Vec<f32>> {
        Ok(self.rows(id, per, rows)?.into_f32())
    }

    /// Rows `rows` of data resource `data` quantized as the int8 or uint8 input of model `model`
    /// takes them (what [`Interpreter::set_input_f32`] would make of them), kept for the next
    /// models with the same input parameters; `None` when the model's input is not int8 or uint8.
    pub fn quantized_rows(
        &mut self,
        model: ResourceId,
        data: ResourceId,
        per: usize,
        rows: (usize, usize),
    ) -> Result<Option<Arc<crate::exec::Buffer>>> {
        let m = self.model(model)?;
        let g = m.main();
        let Some(input) = g.inputs.first().and_then(|&t| g.tensors.get(t)) else { return Ok(None) };
        let (Some(q), crate::ir::DType::I8 | crate::ir::DType::U8) = (&input.quant, input.dtype) else {
            return Ok(None);
        };
        let (scale, zero_point) = q.single();
        let key = (data, rows, input.dtype, scale.to_bits(), zero_point);
        if let Some((_, b)) = self.quantized.iter().find(|(k, _)| *k == key) {
            return Ok(Some(b.clone()));
        }
        let x = self.float_rows(data, per, rows)?;
        let fact = crate::ops::Fact::new(input.dtype, vec![x.len()], input.quant.clone());
        let b = Arc::new(crate::exec::float_to_input(&fact, &x)?);
        self.quantized.insert(0, (key, b.clone()));
        self.quantized.truncate(QUANTIZED_CHUNKS);
        Ok(Some(b))
    }

    /// A resource encoded with [`super::encode`], decoded.
    pub fn value<T: Any + Send + Sync + serde::de::DeserializeOwned>(&mut self, id: ResourceId) -> Result<Arc<T>> {
        self.derived(id, 0, |_, b| decode(b, "resource"))
    }

    /// The parameters of model `id`, prepared once per worker.
    fn params(&mut self, id: ResourceId, plan: &Plan) -> Result<Arc<Params>> {
        let key = (id, TypeId::of::<Params>(), 0);
        if let Some(p) = self.cache.get(&key).and_then(|v| v.clone().downcast::<Params>().ok()) {
            if p.fits(plan) {
                return Ok(p);
            }
        }
        let m = self.model(id)?;
        let p = Arc::new(Params::new(plan, m.main())?);
        self.cache.insert(key, p.clone());
        Ok(p)
    }

    /// The model of resource `id` compiled for `rows` samples at once (its parameters shared by
    /// every batch size), or `None` when its graph does not run batched (then run it one sample at
    /// a time).
    pub fn engine(&mut self, id: ResourceId, rows: usize) -> Result<Option<Arc<Engine>>> {
        let plan = self.derived(id, rows, |w, _| {
            let m = w.model(id)?;
            if rows != 1 && !crate::exec::batchable(m.main()) {
                return Ok(None);
            }
            let batch = (rows != 1).then_some(rows);
            match Plan::new(&m, PlanOptions { batch, ..PlanOptions::default() }) {
                Ok(p) => Ok(Some(Arc::new(p))),
                Err(_) if rows != 1 => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        let Some(plan) = plan.as_ref().clone() else { return Ok(None) };
        let params = self.params(id, &plan)?;
        Ok(Some(Arc::new((plan, params))))
    }

    /// Runs model `id` forward on the samples `x` (`rows` of `per` values), batched where the
    /// model allows it; calls `visit(interpreter, first_row, rows_in_run)` after each run.
    pub fn forward(
        &mut self,
        id: ResourceId,
        x: &[f32],
        per: usize,
        visit: impl FnMut(&Interpreter, usize, usize) -> Result<()>,
    ) -> Result<()> {
        self.forward_input(id, Samples::F32(x), per, visit)
    }

    /// [`Worker::forward`] on samples it may keep: a model with a float input that runs them as
    /// one batch takes `x` as its input buffer, without a copy and without checking the values
    /// again. The caller has checked that every value is finite.
    pub fn forward_checked(
        &mut self,
        id: ResourceId,
        x: Vec<f32>,
        per: usize,
        mut visit: impl FnMut(&Interpreter, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let rows = x.len() / per.max(1);
        let m = self.model(id)?;
        let g = m.main();
        let float_input = g.inputs.len() == 1 && g.tensors.get(g.inputs[0]).is_some_and(|t| t.dtype == DType::F32);
        let Some(e) = self.engine(id, rows)?.filter(|_| rows > 1 && float_input) else {
            return self.forward(id, &x, per, visit);
        };
        self.run_batch(id, rows, &e, |it| it.set_input(0, crate::exec::Buffer::F32(x)), |it| visit(it, 0, rows))
    }

    /// One run of engine `e` (resource `id`) on `rows` samples at once, from a fresh recurrent
    /// state: `set` gives it its input, `visit` reads its outputs.
    fn run_batch(
        &mut self,
        id: ResourceId,
        rows: usize,
        e: &Engine,
        set: impl FnOnce(&mut Interpreter) -> Result<()>,
        visit: impl FnOnce(&Interpreter) -> Result<()>,
    ) -> Result<()> {
        let mut it = self.interpreter(id, rows, e);
        it.reset_state();
        set(&mut it)?;
        it.invoke()?;
        let r = visit(&it);
        self.keep(id, rows, it);
        r
    }

    /// [`Worker::forward`] with samples of any type the model's input takes.
    pub fn forward_input(
        &mut self,
        id: ResourceId,
        x: Samples,
        per: usize,
        mut visit: impl FnMut(&Interpreter, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let rows = x.len() / per.max(1);
        if let Some(e) = self.engine(id, rows)?.filter(|_| rows > 1) {
            return self.run_batch(id, rows, &e, |it| x.set(it, 0, rows, per), |it| visit(it, 0, rows));
        }
        let e = self.engine(id, 1)?.ok_or_else(|| Error::argument("the model does not compile"))?;
        let mut it = self.interpreter(id, 1, &e);
        for r in 0..rows {
            // Samples are independent, as in a batch: recurrent state starts from zero each time.
            it.reset_state();
            x.set(&mut it, r, r + 1, per).map_err(|e| sample_error(e, r))?;
            it.invoke()?;
            visit(&it, r, 1)?;
        }
        self.keep(id, 1, it);
        Ok(())
    }

    /// An interpreter of engine `e` (resource `id` for `rows` samples): one an earlier task left, or
    /// a new one. Its buffers hold the last run's values; every run writes what it reads.
    ///
    /// A new one, when the idle list is full, takes the place of an idle one: of the one whose
    /// memory it can reuse the most of ([`Interpreter::recycle`]; the candidates of a quantization
    /// share their shapes, the float model's batches their types), or, when none fits, of the
    /// oldest, freed first. No more memory is kept than before: at most [`IDLE_INTERPRETERS`] idle
    /// states (a recycled buffer keeps its capacity, at most that of the largest tensor of its type
    /// a state had).
    fn interpreter(&mut self, id: ResourceId, rows: usize, e: &Engine) -> Interpreter {
        let same = |it: &Interpreter| Arc::ptr_eq(it.plan(), &e.0) && Arc::ptr_eq(it.params(), &e.1);
        if let Some(k) = self.idle.iter().position(|(i, r, it)| *i == id && *r == rows && same(it)) {
            return self.idle.remove(k).2;
        }
        if self.idle.len() < IDLE_INTERPRETERS {
            return Interpreter::from_parts(e.0.clone(), e.1.clone());
        }
        let fit = |k: usize| self.idle[k].2.reusable_bytes(&e.0);
        // The best fit; of equal ones the oldest.
        let best = (0..self.idle.len()).max_by_key(|&k| (fit(k), k));
        match best.filter(|&k| fit(k) > 0) {
            Some(k) => self.idle.remove(k).2.recycle(e.0.clone(), e.1.clone()),
            None => {
                self.idle.pop();
                Interpreter::from_parts(e.0.clone(), e.1.clone())
            }
        }
    }

    /// Keeps an interpreter for the next task (a few, the latest).
    fn keep(&mut self, id: ResourceId, rows: usize, it: Interpreter) {
        self.idle.insert(0, (id, rows, it));
        self.idle.truncate(IDLE_INTERPRETERS);
    }
}

/// Input samples: float values (quantized for integer inputs), or the model's own integers.
#[derive(Clone, Copy)]
pub enum Samples<'a> {
    F32(&'a [f32]),
    I8(&'a [i8]),
    U8(&'a [u8]),
}

impl Samples<'_> {
    pub fn len(&self) -> usize {
        match self {
            Samples::F32(v) => v.len(),
            Samples::I8(v) => v.len(),
            Samples::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets sample `r` as the model's input.
    pub fn set_one(&self, it: &mut Interpreter, r: usize, per: usize) -> Result<()> {
        self.set(it, r, r + 1, per)
    }

    /// Sets samples `lo..hi` as the model's input.
    fn set(&self, it: &mut Interpreter, lo: usize, hi: usize, per: usize) -> Result<()> {
        let r = lo * per..hi * per;
        match self {
            Samples::F32(v) => it.set_input_f32(0, &v[r]),
            Samples::I8(v) => it.set_input_from(0, &v[r]),
            Samples::U8(v) => it.set_input_from(0, &v[r]),
        }
    }
}

/// Names the sample (within the chunk) in an input error.
fn sample_error(e: Error, r: usize) -> Error {
    match e {
        Error::Input { message } => Error::input(format!("sample {r} of the batch: {message}")),
        other => other,
    }
}
