//! TensorFlow Lite Micro as the deployment target: whether it runs a model ([`support`]), the
//! tensor arena it needs ([`planner`], modelling TFLM's allocator, kernels and greedy memory
//! planner), and the firmware files that embed the model ([`firmware`]).
//!
//! Works from the IR alone; nothing here runs the model.

mod firmware;
mod greedy;
mod kernels;
mod layout;
mod planner;
mod support;

use serde::Serialize;

pub use firmware::{c_identifier, firmware_files, FirmwareFiles, ARENA_MARGIN_MIN_BYTES, ARENA_MARGIN_PERCENT};
pub use planner::{plan_arena, ArenaPlan};
pub use support::{resolver_method, Unsupported};

use crate::ir::Model;

/// What deploying a model with TFLM takes: the `tflm` object of `inspect --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct TflmReport {
    /// True when TFLM runs the model as it is (`unsupported` is empty).
    pub supported: bool,
    /// Operators TFLM lacks or refuses, hybrid weights, float operators in an int8 model.
    pub unsupported: Vec<Unsupported>,
    /// The predicted minimum tensor arena in bytes (TFLM's reference kernels), or `None` when the
    /// model is too large to plan.
    #[cfg_attr(test, ts(as = "Option<f64>"))]
    pub arena_bytes: Option<u64>,
    /// What the model costs in flash: TFLM reads the flatbuffer in place, uncompressed.
    #[cfg_attr(test, ts(type = "number"))]
    pub flash_bytes: u64,
    /// The `MicroMutableOpResolver` methods the model needs (`AddConv2D`, ...), in order of use.
    pub ops: Vec<String>,
    /// What `arena_bytes` only estimates (see [`ArenaPlan::estimated_for`]); empty when every
    /// allocation is modelled.
    pub arena_estimated_for: Vec<String>,
}

/// The TFLM facts of `model`, whose flatbuffer is `flash_bytes` long.
pub fn report(model: &Model, flash_bytes: u64) -> TflmReport {
    let int8 = model.graphs.first().is_some_and(|g| matches!(crate::summary::precision(g), "int8" | "mixed"));
    let unsupported: Vec<Unsupported> =
        model.graphs.iter().enumerate().flat_map(|(i, g)| support::graph_issues(g, i, int8)).collect();
    let plan = plan_arena(model).ok();
    TflmReport {
        supported: unsupported.is_empty(),
        unsupported,
        arena_bytes: plan.as_ref().map(|p| p.arena_bytes),
        flash_bytes,
        ops: support::resolver_ops(&model.graphs),
        arena_estimated_for: plan.map(|p| p.estimated_for).unwrap_or_default(),
    }
}
