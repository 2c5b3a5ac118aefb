//! Conformance over the real third-party models in `../shared/reference/models` (or
//! `$TINYML_REFERENCE_DIR/models`): every model reads, summarizes, and round-trips through our writer
//! to the same IR; runnable models give identical outputs before and after the round trip; and
//! thousands of mutations of every model never make the reader or the engine panic.
//!
//! A clone without that folder skips these tests and says so on stderr.

use std::path::PathBuf;
use std::time::Instant;

use tinyml_optimizer::exec::{Buffer, Interpreter};
use tinyml_optimizer::ir::{DType, Model};
use tinyml_optimizer::rng::Rng;
use tinyml_optimizer::{summary, tflite};

fn reference_models() -> Option<Vec<(String, Vec<u8>)>> {
    let dir = std::env::var_os("TINYML_REFERENCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"))
        .join("models");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("\n*** SKIPPED: reference models not found at {} (set TINYML_REFERENCE_DIR) ***\n", dir.display());
        return None;
    };
    let mut models: Vec<(String, Vec<u8>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tflite"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    models.sort();
    assert!(!models.is_empty(), "no .tflite files in {}", dir.display());
    Some(models)
}

/// Deterministic random inputs for every model input.
fn random_inputs(it: &Interpreter, seed: u64) -> Vec<Buffer> {
    let mut rng = Rng::new(seed);
    it.inputs()
        .iter()
        .map(|d| {
            let n: usize = d.shape.iter().product();
            match d.dtype {
                DType::F32 => Buffer::F32((0..n).map(|_| rng.normal()).collect()),
                DType::I8 => Buffer::I8((0..n).map(|_| rng.below(256) as i32 as i8).collect()),
                DType::U8 => Buffer::U8((0..n).map(|_| rng.below(256) as u8).collect()),
                DType::I16 => Buffer::I16((0..n).map(|_| (rng.below(65536) as i32 - 32768) as i16).collect()),
                other => panic!("unexpected input type {other}"),
            }
        })
        .collect()
}

fn outputs(model: &Model, inputs: &[Buffer]) -> Option<Vec<Buffer>> {
    let mut it = Interpreter::new(model).ok()?;
    for (i, x) in inputs.iter().enumerate() {
        it.set_input(i, x.clone()).unwrap();
    }
    it.invoke().unwrap();
    Some((0..it.outputs().len()).map(|i| it.output(i).unwrap().clone()).collect())
}

#[test]
fn every_reference_model_reads_summarizes_and_round_trips() {
    let Some(models) = reference_models() else { return };
    let mut ran = 0;
    for (name, bytes) in &models {
        let m = tflite::read(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = summary::summarize(&m, bytes.len());
        assert!(s.parameters > 0 && !s.layers.is_empty(), "{name}: empty summary");
        let written = tflite::write(&m).unwrap_or_else(|e| panic!("{name}: write: {e}"));
        let back = tflite::read(&written).unwrap_or_else(|e| panic!("{name}: re-read: {e}"));
        assert_eq!(back, m, "{name}: the round trip changed the model");
        // Writing again is a fixed point: same bytes.
        assert_eq!(tflite::write(&back).unwrap(), written, "{name}: writing is not deterministic");
        if let Ok(it) = Interpreter::new(&m) {
            let x = random_inputs(&it, 1);
            assert_eq!(outputs(&m, &x), outputs(&back, &x), "{name}: outputs differ after the round trip");
            ran += 1;
        }
        println!(
            "{name}: {} layers, {} parameters, {} MACs, precision {}",
            s.layers.len(),
            s.parameters,
            s.macs,
            s.precision
        );
    }
    println!("{} models round-tripped, {ran} of them run by the engine", models.len());
}

/// Applies one random corruption: bit flips, byte overwrites, truncation, a block of random bytes,
/// or an overwritten 32-bit little-endian word (offsets and lengths are such words).
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = bytes.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(v.len());
            v[i] = rng.below(256) as u8;
        }
        2 => v.truncate(rng.below(v.len())),
        3 => {
            let i = rng.below(v.len());
            let n = (1 + rng.below(64)).min(v.len() - i);
            for b in &mut v[i..i + n] {
                *b = rng.below(256) as u8;
            }
        }
        4 => {
            let i = rng.below(v.len().saturating_sub(4).max(1)) & !3;
            let word: u32 = match rng.below(4) {
                0 => 0,
                1 => u32::MAX,
                2 => 0x7fff_ffff,
                _ => rng.next_u64() as u32 % (v.len() as u32 * 2 + 1),
            };
            if i + 4 <= v.len() {
                v[i..i + 4].copy_from_slice(&word.to_le_bytes());
            }
        }
        _ => {
            // Small files: also try pure garbage of the same length.
            for b in &mut v {
                *b = rng.below(256) as u8;
            }
        }
    }
    v
}

#[test]
fn mutated_reference_models_never_panic() {
    let Some(models) = reference_models() else { return };
    let start = Instant::now();
    let (mut total, mut read_ok, mut ran) = (0, 0, 0);
    for (mi, (name, bytes)) in models.iter().enumerate() {
        // Thousands per model; the multi-megabyte ones fewer, to keep the suite fast.
        let count = if bytes.len() > 1_000_000 { 300 } else { 2000 };
        let mut rng = Rng::new(0xC0FFEE + mi as u64);
        for k in 0..count {
            let m = mutate(bytes, &mut rng);
            total += 1;
            let result = std::panic::catch_unwind(|| {
                let Ok(model) = tflite::read(&m) else { return (false, false) };
                let _ = summary::summarize(&model, m.len());
                let _ = tflite::write(&model);
                // Running costs more than reading: run one in twenty of the models that read.
                if k % 20 != 0 {
                    return (true, false);
                }
                let Ok(mut it) = Interpreter::new(&model) else { return (true, false) };
                for (i, x) in random_inputs(&it, k as u64).into_iter().enumerate() {
                    let _ = it.set_input(i, x);
                }
                (true, it.invoke().is_ok())
            });
            match result {
                Ok((r, e)) => {
                    read_ok += r as usize;
                    ran += e as usize;
                }
                Err(_) => panic!("{name}: mutation {k} (seed {}) panicked", 0xC0FFEE + mi as u64),
            }
        }
    }
    println!(
        "{total} mutations of {} models in {:.1}s: {read_ok} still read, {ran} ran; none panicked",
        models.len(),
        start.elapsed().as_secs_f64()
    );
}
