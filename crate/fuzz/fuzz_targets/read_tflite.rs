//! Arbitrary bytes to the TFLite reader (within a 64 MiB budget); whatever reads is summarized and
//! written back, and what we write must read again. Nothing may panic or outgrow the RSS limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::{summary, tflite};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = tflite::read_with(data, &common::budget()) {
        let _ = summary::summarize(&model, data.len());
        if let Ok(bytes) = tflite::write(&model) {
            if let Err(e) = tflite::read(&bytes) {
                panic!("a model we wrote must read back: {e}");
            }
        }
    }
});
