//! Mutated models through the engine: prepare and run, a batch of two samples (dequantized and raw)
//! and an evaluation against itself with labels. Models over the small-work bound are skipped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::exec::{run_batch, Interpreter};
use tinyml_optimizer::npy::{NpyArray, NpyData};
use tinyml_optimizer::{evaluate, tflite};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = tflite::read_with(data, &common::budget()) else { return };
    if !common::small(&model) {
        return;
    }
    let Ok(mut it) = Interpreter::new(&model) else { return };
    if it.invoke().is_err() {
        return;
    }
    let Some(x) = common::batch(&model, 2) else { return };
    for raw in [false, true] {
        let _ = run_batch(&mut it, &x, raw, |_, _| {});
    }
    let labels = NpyArray::new(vec![2], NpyData::I64(vec![0, 1])).expect("two labels");
    let _ = evaluate::evaluate(&model, data.len(), &x, Some(&labels), Some((&model, data.len())), &mut common::quiet);
});
