//! Arbitrary bytes to the .npy reader, with the size arithmetic of this host and of a 32-bit
//! target (wasm32): both must agree, and whatever reads must write back to the same bytes
//! (compared as bytes, so NaN payloads count as equal).
#![no_main]
use libfuzzer_sys::fuzz_target;
use tinyml_optimizer::npy;

fuzz_target!(|data: &[u8]| {
    let native = npy::read(data);
    let wasm32 = npy::read_for(data, 32);
    match (&native, &wasm32) {
        (Ok(a), Ok(b)) => assert_eq!(npy::write(a), npy::write(b), "32- and 64-bit reads differ"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "32- and 64-bit errors differ"),
        _ => panic!("32- and 64-bit reads disagree: {native:?} vs {wasm32:?}"),
    }
    if let Ok(a) = native {
        let bytes = npy::write(&a);
        let again = npy::read(&bytes).expect("an array we wrote must read back");
        assert_eq!(npy::write(&again), bytes);
    }
});
