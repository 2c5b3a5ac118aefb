//! The TypeScript declarations of every type that crosses into JS (options in, reports and error
//! codes out), derived from the Rust definitions with ts-rs and committed as
//! `web/src/generated/core.ts`, which `web/src/types.ts` re-exports.
//!
//! The derives exist in test builds only (`#[cfg_attr(test, derive(ts_rs::TS))]` beside each
//! type's `Serialize`), so the wasm binary carries none of it. The test below fails when the
//! committed file differs from what the definitions produce; to regenerate it:
//!
//! ```sh
//! UPDATE_TS_BINDINGS=1 cargo test -p tinyml-optimizer --lib ts_bindings
//! ```

use ts_rs::TS;

/// Where the declarations are committed, from the crate's directory.
const OUTPUT: &str = "../web/src/generated/core.ts";

const HEADER: &str = "\
// Generated from the Rust definitions by ts-rs (crate/src/ts_bindings.rs): do not edit by hand.
// Regenerate with `UPDATE_TS_BINDINGS=1 cargo test -p tinyml-optimizer --lib ts_bindings`.
";

fn push<T: TS>(out: &mut String) {
    out.push('\n');
    if let Some(docs) = T::docs() {
        out.push_str(&docs);
    }
    out.push_str("export ");
    out.push_str(&T::decl());
    out.push('\n');
}

/// Calls `$f::<T>($arg)` for every declared type, in the file's order (by module, dependencies
/// first).
macro_rules! each_type {
    ($f:ident, $arg:expr) => {{
        use crate::{error, evaluate, exec, grad, ir, prune, quantize, summary, tflm, train};
        // Errors.
        $f::<error::ErrorCode>($arg);
        $f::<error::Location>($arg);
        // Model summary (`inspect`) and deployment with TFLite Micro.
        $f::<ir::DType>($arg);
        $f::<ir::QuantParams>($arg);
        $f::<exec::IoDetail>($arg);
        $f::<summary::OpCount>($arg);
        $f::<summary::WeightSummary>($arg);
        $f::<summary::LayerSummary>($arg);
        $f::<summary::TensorSummary>($arg);
        $f::<summary::ModelSummary>($arg);
        $f::<tflm::Unsupported>($arg);
        $f::<tflm::TflmReport>($arg);
        $f::<tflm::FirmwareFiles>($arg);
        // Quantization.
        $f::<quantize::Mode>($arg);
        $f::<quantize::Granularity>($arg);
        $f::<quantize::IoType>($arg);
        $f::<quantize::CalibrationMethod>($arg);
        $f::<quantize::QuantizeOptions>($arg);
        $f::<quantize::LayerReport>($arg);
        $f::<quantize::report::Candidate>($arg);
        $f::<quantize::QuantReport>($arg);
        // Pruning.
        $f::<prune::Method>($arg);
        $f::<prune::PruneOptions>($arg);
        $f::<prune::LayerMetrics>($arg);
        $f::<prune::ModelMetrics>($arg);
        $f::<prune::PruneReport>($arg);
        // Evaluation.
        $f::<evaluate::Latency>($arg);
        $f::<evaluate::ReferenceComparison>($arg);
        $f::<evaluate::EvalReport>($arg);
        // Training.
        $f::<grad::Loss>($arg);
        $f::<train::OptimizerKind>($arg);
        $f::<train::LrSchedule>($arg);
        $f::<train::PruningSchedule>($arg);
        $f::<train::TrainOptions>($arg);
        $f::<train::PruneDuring>($arg);
        $f::<train::EpochReport>($arg);
        $f::<train::Kept>($arg);
        $f::<train::TrainReport>($arg);
        $f::<train::TrainMetrics>($arg);
    }};
}

fn declarations() -> String {
    let mut out = String::from(HEADER);
    each_type!(push, &mut out);
    out
}

#[test]
fn committed_typescript_matches_the_rust_definitions() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(OUTPUT);
    let want = declarations();
    if std::env::var_os("UPDATE_TS_BINDINGS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "web/src/generated/core.ts differs from the Rust definitions; regenerate it with \
         `UPDATE_TS_BINDINGS=1 cargo test -p tinyml-optimizer --lib ts_bindings` and commit it"
    );
}

/// Every type a declaration refers to is declared in the file too (the file has no imports).
#[test]
fn every_referenced_type_is_declared() {
    struct Names(Vec<String>);
    impl ts_rs::TypeVisitor for Names {
        fn visit<T: TS + 'static + ?Sized>(&mut self) {
            // Declared types have a file of their own in ts-rs's scheme; primitives do not.
            if T::output_path().is_some() {
                self.0.push(T::ident());
            }
        }
    }
    fn dependencies<T: TS + 'static>(names: &mut Names) {
        T::visit_dependencies(names);
    }
    let text = declarations();
    let mut names = Names(Vec::new());
    each_type!(dependencies, &mut names);
    assert!(names.0.len() > 20, "{:?}", names.0);
    for name in names.0 {
        assert!(text.contains(&format!("export type {name} ")), "{name} is used but not declared");
    }
}
