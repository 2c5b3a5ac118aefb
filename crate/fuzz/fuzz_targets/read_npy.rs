//! Feeds arbitrary bytes to the .npy reader; whatever reads must write back to the same bytes
//! (compared as bytes, so NaN payloads count as equal).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::npy;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = npy::read(data) {
        let bytes = npy::write(&a);
        let again = npy::read(&bytes).expect("an array we wrote must read back");
        assert_eq!(npy::write(&again), bytes);
    }
});
