//! Feeds arbitrary bytes to the TFLite reader; whatever reads is summarized, written back and
//! prepared by the engine. Nothing may panic. Seed the corpus with the fixture models:
//!   cargo +nightly fuzz run read_tflite ../../tests/fixtures/*/ -- -max_total_time=60
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::{exec::Interpreter, summary, tflite};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = tflite::read(data) {
        let _ = summary::summarize(&model, data.len());
        if let Ok(bytes) = tflite::write(&model) {
            assert!(tflite::read(&bytes).is_ok(), "a model we wrote must read back");
        }
        if let Ok(mut it) = Interpreter::new(&model) {
            let _ = it.invoke();
        }
    }
});
