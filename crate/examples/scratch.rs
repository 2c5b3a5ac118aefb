use tinyml_optimizer::prune::{model_metrics, prune, Method, PruneOptions};
use tinyml_optimizer::tflite;
fn main() {
    let m = tflite::read(&std::fs::read("tests/fixtures/resnet/model_float.tflite").unwrap()).unwrap();
    let t = std::time::Instant::now();
    let _ = model_metrics(&m).unwrap();
    println!("metrics {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = tflite::write(&m).unwrap();
    println!("write {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = tinyml_optimizer::passes::fold_constants(&m).unwrap();
    println!("fold {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let (_, r) = prune(
        &m,
        None,
        &PruneOptions { method: Method::GlobalMagnitude, sparsity: 0.5, ..Default::default() },
        &mut |_, _, _| {},
    )
    .unwrap();
    println!("prune {:?} score {:.0} prune {:.0}", t.elapsed(), r.score_ms, r.prune_ms);
}
