//! Times static quantization (`auto`, 200 samples) and evaluation (1000 samples, float reference)
//! of a model natively, phase by phase: the job's own serial work (`next`/`accept`) and each round
//! (development aid, the native twin of tests/bench/threads_bench.mjs).
//!
//! cargo run --release --example jobs_speed -- MODEL.tflite [THREADS] [quantize|both]
use std::time::Instant;

use tinyml_optimizer::evaluate::EvaluateJob;
use tinyml_optimizer::npy::{NpyArray, NpyData};
use tinyml_optimizer::parallel::{run, Job, Round};
use tinyml_optimizer::quantize::{quantize_job, QuantizeOptions};
use tinyml_optimizer::{error::Result, tflite};

/// A job whose serial steps are timed and printed.
struct Timed<'a> {
    job: &'a mut dyn Job,
    start: Instant,
    last: Instant,
}

impl Timed<'_> {
    fn mark(&mut self, what: &str) {
        let now = Instant::now();
        let (at, took) = (now - self.start, now - self.last);
        println!("  {:>8.1} ms  {what:<28} {:>8.1} ms", at.as_secs_f64() * 1e3, took.as_secs_f64() * 1e3);
        self.last = now;
    }
}

impl Job for Timed<'_> {
    fn next(&mut self) -> Result<Option<Round>> {
        let r = self.job.next()?;
        let what =
            r.as_ref().map_or("next: done".to_string(), |r| format!("next: {} ({} tasks)", r.stage, r.tasks.len()));
        self.mark(&what);
        Ok(r)
    }

    fn accept(&mut self, results: Vec<Vec<u8>>) -> Result<()> {
        self.mark("round ran");
        self.job.accept(results)?;
        self.mark("accept");
        Ok(())
    }
}

/// `count` floats in [0, 1) from the benchmark's linear congruential generator.
fn pixels(shape: Vec<usize>, seed: u32) -> NpyArray {
    let count = shape.iter().product();
    let mut s = seed;
    let v = (0..count)
        .map(|_| {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (s >> 8) as f32 / 16_777_216.0
        })
        .collect();
    NpyArray::new(shape, NpyData::F32(v)).expect("shape matches")
}

fn timed(name: &str, job: &mut dyn Job, threads: usize) {
    println!("{name}, {threads} thread(s):");
    let t = Instant::now();
    let mut timed = Timed { job, start: t, last: t };
    run(&mut timed, threads, &mut |_, _, _| {}).expect("job runs");
    println!("  total {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("model file");
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let what = args.get(3).map_or("both", String::as_str);
    let model = tflite::read(&bytes).expect("model reads");
    let mut shape = model.main().tensors[model.main().inputs[0]].shape.clone();
    {
        shape[0] = 200;
        let calib = pixels(shape.clone(), 1);
        let t = Instant::now();
        let mut job = quantize_job(&model, &calib, &QuantizeOptions::default()).expect("job starts");
        println!("quantize job set up in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        timed("quantize", &mut job, threads);
        let (q, _) = job.finish().expect("quantized");
        let out = tflite::write(&q).expect("writes");
        let h = out.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        println!("  quantized model: {} bytes, FNV-1a {h:016x}", out.len());
        if what == "quantize" {
            return;
        }
        shape[0] = 1000;
        let x = pixels(shape, 2);
        let t = Instant::now();
        let size = out.len();
        let mut job = EvaluateJob::new(&q, size, &x, None, Some((&model, bytes.len()))).expect("job starts");
        println!("evaluate job set up in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        timed("evaluate", &mut job, threads);
        let t = Instant::now();
        let r = job.finish().expect("report");
        println!(
            "  finish (latency) {:.1} ms; agreement {:?}",
            t.elapsed().as_secs_f64() * 1e3,
            r.reference.map(|r| r.top1_agreement)
        );
    }
}
