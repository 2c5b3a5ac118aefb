//! Times one training epoch of a fixture model natively (development aid).
use tinyml_optimizer::npy::{self, NpyArray, NpyData};
use tinyml_optimizer::parallel::run;
use tinyml_optimizer::train::{TrainJob, TrainOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("cnn", |s| s.as_str());
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    let m =
        tinyml_optimizer::tflite::read(&std::fs::read(format!("{root}{name}/model_float.tflite")).unwrap()).unwrap();
    let x = npy::read(&std::fs::read(format!("{root}data/patterns_test_x.npy")).unwrap()).unwrap();
    let y = npy::read(&std::fs::read(format!("{root}data/patterns_test_y.npy")).unwrap()).unwrap();
    let y = NpyArray::new(vec![1000], NpyData::I64(y.to_i64().unwrap())).unwrap();
    let opts = TrainOptions { epochs: 1, validation_split: 0.0, ..Default::default() };
    let mut job = TrainJob::new(&m, &x, &y, &opts, None, Vec::new()).unwrap();
    let t = std::time::Instant::now();
    run(&mut job, threads, &mut |_, _, _| {}).unwrap();
    let (_, r, _) = job.finish().unwrap();
    println!("{name}: {:?} for 1000 samples, loss {:.4}", t.elapsed(), r.epochs[0].loss);
}
