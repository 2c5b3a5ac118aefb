//! Runs one model many times natively, for instruction counts of the run loop and kernels
//! (`valgrind --tool=callgrind`) and a per-layer profile (development aid).
//!
//!   cargo run --release --example invoke_loop -- MODEL.tflite [RUNS] [--profile]
use tinyml_optimizer::exec::Interpreter;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).expect("usage: invoke_loop MODEL.tflite [RUNS] [--profile]");
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let model = tinyml_optimizer::tflite::read(&std::fs::read(path).unwrap()).unwrap();
    let mut it = Interpreter::new(&model).unwrap();
    let n: usize = it.inputs()[0].shape.iter().product();
    let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 256) as f32 / 256.0).collect();
    it.set_input_f32(0, &x).unwrap();
    it.invoke().unwrap();
    let t = std::time::Instant::now();
    for _ in 0..runs {
        it.invoke().unwrap();
    }
    println!("{:.4} ms per run ({runs} runs)", t.elapsed().as_secs_f64() * 1e3 / runs as f64);
    if args.iter().any(|a| a == "--profile") {
        profile(&mut it, &model, runs);
    }
}

fn profile(it: &mut Interpreter, model: &tinyml_optimizer::ir::Model, runs: usize) {
    let mut total: Vec<(usize, f64)> = Vec::new();
    for _ in 0..runs {
        for (k, (node, ms)) in it.invoke_profiled().unwrap().into_iter().enumerate() {
            if total.len() <= k {
                total.push((node, 0.0));
            }
            total[k].1 += ms / runs as f64;
        }
    }
    for (node, ms) in total {
        println!("{node:4} {:24} {:8.4} ms", model.main().nodes[node].op.name(), ms);
    }
}
