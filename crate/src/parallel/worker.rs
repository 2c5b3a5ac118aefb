//! One engine instance's side of a job: the shared inputs it was sent, what it derived from them,
//! and the tasks it runs.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{decode, Resource, ResourceId};
use crate::error::{Error, Result};
use crate::exec::{Interpreter, Params, Plan, PlanOptions};
use crate::ir::Model;
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
}

/// A compiled model: its plan and parameters for a batch size.
pub type Engine = (Arc<Plan>, Arc<Params>);

type CacheKey = (ResourceId, TypeId, usize);

/// The resources an engine instance holds and what it derived from them.
#[derive(Default)]
pub struct Worker {
    resources: HashMap<ResourceId, Resource>,
    cache: HashMap<CacheKey, Arc<dyn Any + Send + Sync>>,
}

impl Worker {
    /// Stores a shared input (replacing one with the same id and what was derived from it).
    pub fn put(&mut self, id: ResourceId, r: Resource) {
        self.cache.retain(|k, _| k.0 != id);
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
            Resource::Model(_) | Resource::Compiled(..) => Arc::default(),
        };
        let v = Arc::new(make(self, &raw)?);
        self.cache.insert(key, v.clone());
        Ok(v)
    }

    /// A model resource (in memory, or `.tflite` bytes read once).
    pub fn model(&mut self, id: ResourceId) -> Result<Arc<Model>> {
        if let Resource::Model(m) | Resource::Compiled(m, _) = self.resource(id)? {
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
            let mut it = Interpreter::from_parts(e.0.clone(), e.1.clone());
            x.set(&mut it, 0, rows, per)?;
            it.invoke()?;
            return visit(&it, 0, rows);
        }
        let e = self.engine(id, 1)?.ok_or_else(|| Error::argument("the model does not compile"))?;
        let mut it = Interpreter::from_parts(e.0.clone(), e.1.clone());
        for r in 0..rows {
            // Samples are independent, as in a batch: recurrent state starts from zero each time.
            it.reset_state();
            x.set(&mut it, r, r + 1, per).map_err(|e| sample_error(e, r))?;
            it.invoke()?;
            visit(&it, r, 1)?;
        }
        Ok(())
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
            Samples::I8(v) => it.set_input(0, crate::exec::Buffer::I8(v[r].to_vec())),
            Samples::U8(v) => it.set_input(0, crate::exec::Buffer::U8(v[r].to_vec())),
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
