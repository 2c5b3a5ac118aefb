//! Shared by the integration tests: fixture files compiled in, so the same tests run natively and
//! in the browser (wasm-pack test).

/// The bytes of `tests/fixtures/DIR/FILE`.
#[macro_export]
macro_rules! fixture {
    ($dir:literal, $file:expr) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/", $dir, "/", $file)).as_slice()
    };
}
