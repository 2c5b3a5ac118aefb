//! Times training epochs of a fixture model natively (development aid):
//! `train_speed [MODEL] [THREADS] [float|prune|qat] [SAMPLES]`.
use tinyml_optimizer::npy::{self, NpyArray, NpyData};
use tinyml_optimizer::parallel::run;
use tinyml_optimizer::train::{qat, PruneDuring, QatJob, TrainJob, TrainOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("cnn", |s| s.as_str());
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mode = args.get(3).map_or("float", |s| s.as_str());
    let samples: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000).clamp(32, 1000);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    let m =
        tinyml_optimizer::tflite::read(&std::fs::read(format!("{root}{name}/model_float.tflite")).unwrap()).unwrap();
    let x = npy::read(&std::fs::read(format!("{root}data/patterns_test_x.npy")).unwrap()).unwrap();
    let y = npy::read(&std::fs::read(format!("{root}data/patterns_test_y.npy")).unwrap()).unwrap();
    let per = x.len() / 1000;
    let xs = NpyArray::new([&[samples], &x.shape[1..]].concat(), NpyData::F32(x.to_f32()[..samples * per].to_vec()));
    let ys = NpyArray::new(vec![samples], NpyData::I64(y.to_i64().unwrap()[..samples].to_vec()));
    let (x, y) = (xs.unwrap(), ys.unwrap());
    let opts = TrainOptions { epochs: 1, validation_split: 0.0, seed: 1, ..Default::default() };
    let t = std::time::Instant::now();
    let (ms, loss, weights) = match mode {
        "qat" => {
            let mut job =
                QatJob::new(&m, &x, &y, qat::Calibration::TrainingSamples, &opts, &Default::default()).unwrap();
            run(&mut job, threads, &mut |_, _, _| {}).unwrap();
            let (q, _, r, _) = job.finish().unwrap();
            (r.ms_per_epoch, r.epochs[0].loss, tinyml_optimizer::tflite::write(&q).unwrap())
        }
        _ => {
            let prune = (mode == "prune").then_some(PruneDuring {
                method: tinyml_optimizer::prune::Method::LayerMagnitude,
                schedule: None,
                sparsity: 0.5,
                include_last_layer: false,
                include_depthwise: false,
            });
            let mut job = TrainJob::new(&m, &x, &y, &opts, prune.as_ref(), Vec::new()).unwrap();
            run(&mut job, threads, &mut |_, _, _| {}).unwrap();
            let (m, r, _) = job.finish().unwrap();
            (r.ms_per_epoch, r.epochs[0].loss, tinyml_optimizer::tflite::write(&m).unwrap())
        }
    };
    let hash = weights.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    println!(
        "{name} {mode}: {ms:.0} ms/epoch ({:?} in all) for {samples} samples, loss {loss:.6}, model hash {hash:016x}",
        t.elapsed()
    );
}
