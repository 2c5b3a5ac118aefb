//! Resource budget: how much memory a model, a tensor or a file reader may claim, and size
//! arithmetic that cannot wrap.
//!
//! Every size the engine computes from a file (a shape's element count, a tensor's bytes, a scratch
//! buffer) goes through these helpers before anything is allocated. They compute in `u64` with
//! checked operations, then require the result to fit the target's address width: `usize` is 32
//! bits on wasm32, where 2^16 × 2^16 floats already overflow. A size over the budget, or one no
//! address space holds, is an [`Error::Resource`] that names what asked, how much, and the limit.

use crate::error::{Error, Location, Result};
use crate::ir::DType;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// How much memory the engine may use for one model. Set it once per engine; the defaults fit a
/// browser tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Largest single buffer: one tensor, one constant, one scratch area.
    pub max_tensor_bytes: u64,
    /// Largest total of a prepared model: activations, scratch and packed weights.
    pub max_model_bytes: u64,
    /// A file reader may copy at most `max_reader_factor` times the file's size, plus
    /// [`Budget::max_reader_slack`] (and never more than [`Budget::max_model_bytes`]).
    pub max_reader_factor: u64,
    /// Fixed allowance of the reader on top of the per-byte factor (bookkeeping of small files).
    pub max_reader_slack: u64,
}

thread_local! {
    static CURRENT: std::cell::Cell<Budget> = std::cell::Cell::new(Budget::default());
}

/// The budget this thread's engine works within (the default unless [`set_current`] changed it).
pub fn current() -> Budget {
    CURRENT.with(std::cell::Cell::get)
}

/// Sets the budget of this thread's engine (the JS API's `maxMemory`, the CLI's `--max-memory`).
pub fn set_current(b: Budget) {
    CURRENT.with(|c| c.set(b));
}

impl Default for Budget {
    /// 1 GiB per model, 256 MiB per tensor, a reader copying at most 4 × the file + 16 MiB.
    ///
    /// Why these figures: wasm32 linear memory ends at 4 GiB and browsers often grant a tab less
    /// (2 GiB is common, less on phones), and the engine's memory is shared by the model, the
    /// float and int8 copies quantization holds, calibration data and the outputs on their way
    /// back to JavaScript. 1 GiB leaves that room. TinyML models run on chips with a few hundred
    /// KiB to a few MiB of RAM, so 256 MiB for one tensor is far above any real activation (a
    /// 224×224×64 float map is 12.8 MiB) while one four times bigger could not coexist with its
    /// producer and consumer in 1 GiB anyway. A model's in-memory form is about its file size (the
    /// weights) plus a few hundred bytes per tensor and operator, so 4 × the file + 16 MiB admits
    /// every real model while a file whose tables are shared many times over is refused.
    fn default() -> Self {
        Budget::with_max_memory(GIB)
    }
}

impl Budget {
    /// A budget for `bytes` of engine memory per model; one tensor may take a quarter of it.
    pub fn with_max_memory(bytes: u64) -> Budget {
        Budget { max_tensor_bytes: bytes / 4, max_model_bytes: bytes, max_reader_factor: 4, max_reader_slack: 16 * MIB }
    }

    /// Bytes a reader may copy out of a file of `file_len` bytes.
    pub fn reader_limit(&self, file_len: usize) -> u64 {
        (file_len as u64)
            .saturating_mul(self.max_reader_factor)
            .saturating_add(self.max_reader_slack)
            .min(self.max_model_bytes)
    }

    /// Bytes of a tensor of `shape` and `dtype`, refused over [`Budget::max_tensor_bytes`].
    /// `what` names it in the error ("tensor 3 'input'", "padded input").
    pub fn tensor_bytes(&self, shape: &[usize], dtype: DType, what: &str) -> Result<usize> {
        let asked = bytes_u64(shape, dtype).map_err(|e| e.named(what))?;
        self.check_tensor(asked, what)
    }

    /// Refuses a single buffer of `bytes` over [`Budget::max_tensor_bytes`]; returns it as `usize`.
    pub fn check_tensor(&self, bytes: u64, what: &str) -> Result<usize> {
        if bytes > self.max_tensor_bytes {
            return Err(Error::resource(format!("{what} (one buffer)"), Some(bytes), self.max_tensor_bytes));
        }
        to_usize(bytes, ADDRESS_BITS).map_err(|e| e.named(what))
    }

    /// Refuses a model total of `bytes` over [`Budget::max_model_bytes`].
    pub fn check_model(&self, bytes: u64, what: &str) -> Result<()> {
        if bytes > self.max_model_bytes {
            return Err(Error::resource(format!("{what} (the whole model)"), Some(bytes), self.max_model_bytes));
        }
        Ok(())
    }

    /// A meter for the bytes a reader copies out of a file of `file_len` bytes.
    pub fn reader_meter(&self, file_len: usize) -> Meter {
        Meter::new("reading the file", self.reader_limit(file_len))
    }
}

/// Counts bytes against a limit: each [`Meter::charge`] adds to the total and fails once the
/// total would pass the limit, before the caller allocates.
#[derive(Clone, Debug)]
pub struct Meter {
    what: &'static str,
    used: u64,
    limit: u64,
}

impl Meter {
    pub fn new(what: &'static str, limit: u64) -> Meter {
        Meter { what, used: 0, limit }
    }

    /// Adds `bytes` to the total, or fails naming the total and the limit.
    pub fn charge(&mut self, bytes: u64) -> Result<()> {
        match self.used.checked_add(bytes).filter(|&t| t <= self.limit) {
            Some(total) => {
                self.used = total;
                Ok(())
            }
            None => Err(Error::resource(self.what, self.used.checked_add(bytes), self.limit)),
        }
    }

    /// Bytes charged so far.
    pub fn used(&self) -> u64 {
        self.used
    }
}

/// Address width of this target: 32 on wasm32, 64 natively.
pub const ADDRESS_BITS: u32 = usize::BITS;

/// Element count of `shape`, checked (fits this target's `isize`, as Rust's allocations must).
pub fn elements(shape: &[usize]) -> Result<usize> {
    to_usize(elements_u64(shape)?, ADDRESS_BITS)
}

/// Bytes of a tensor of `shape` and `dtype`, checked (fits this target's `isize`). Types without a
/// fixed size (strings, 4-bit) count one byte per element, an upper bound of their packed form.
pub fn bytes(shape: &[usize], dtype: DType) -> Result<usize> {
    to_usize(bytes_u64(shape, dtype)?, ADDRESS_BITS)
}

/// `a · b`, checked (fits this target's `usize`).
pub fn mul(a: usize, b: usize) -> Result<usize> {
    to_usize(mul_u64(a as u64, b as u64)?, ADDRESS_BITS)
}

/// `a + b`, checked (fits this target's `usize`).
pub fn add(a: usize, b: usize) -> Result<usize> {
    to_usize(add_u64(a as u64, b as u64)?, ADDRESS_BITS)
}

/// Element count of `shape` in 64-bit arithmetic, whatever the target.
pub fn elements_u64(shape: &[usize]) -> Result<u64> {
    shape
        .iter()
        .try_fold(1u64, |n, &d| mul_u64(n, d as u64))
        .map_err(|_| Error::resource(format!("a tensor of shape {shape:?}: its element count"), None, u64::MAX))
}

/// Bytes of a tensor of `shape` and `dtype` in 64-bit arithmetic, whatever the target.
pub fn bytes_u64(shape: &[usize], dtype: DType) -> Result<u64> {
    let size = dtype.size_of().unwrap_or(1) as u64;
    elements_u64(shape)
        .and_then(|n| mul_u64(n, size))
        .map_err(|_| Error::resource(format!("a {dtype} tensor of shape {shape:?}"), None, u64::MAX))
}

/// `a · b` in 64 bits, or a resource error when it overflows.
pub fn mul_u64(a: u64, b: u64) -> Result<u64> {
    a.checked_mul(b).ok_or_else(|| Error::resource(format!("{a} × {b}"), None, u64::MAX))
}

/// `a + b` in 64 bits, or a resource error when it overflows.
pub fn add_u64(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(|| Error::resource(format!("{a} + {b}"), None, u64::MAX))
}

/// `n` as a size on a target whose `usize` has `bits` bits, or a resource error when it does not
/// fit. The limit is `isize::MAX` of that target, the largest allocation Rust makes (2 GiB - 1 on
/// wasm32). Tests call it with `bits = 32` to check wasm32's arithmetic on any host.
pub fn to_usize(n: u64, bits: u32) -> Result<usize> {
    let max = (1u64 << (bits.clamp(8, 64) - 1)) - 1;
    if n > max {
        return Err(Error::resource(format!("a size of {n} on a {bits}-bit target"), Some(n), max));
    }
    usize::try_from(n).map_err(|_| Error::resource(format!("a size of {n}"), Some(n), usize::MAX as u64))
}

/// [`elements`] for a target whose `usize` has `bits` bits.
pub fn elements_for(shape: &[usize], bits: u32) -> Result<usize> {
    to_usize(elements_u64(shape)?, bits)
}

/// [`bytes`] for a target whose `usize` has `bits` bits.
pub fn bytes_for(shape: &[usize], dtype: DType, bits: u32) -> Result<usize> {
    to_usize(bytes_u64(shape, dtype)?, bits)
}

impl Error {
    /// A resource error: `what` needs `asked` bytes (`None`: more than 64-bit arithmetic holds),
    /// over `limit`.
    pub fn resource(what: impl Into<String>, asked: Option<u64>, limit: u64) -> Error {
        Error::Resource { what: what.into().into_boxed_str(), asked, limit, at: Location::default() }
    }

    /// Replaces the subject of a resource error (keeps other errors as they are).
    fn named(mut self, name: &str) -> Error {
        if let Error::Resource { what, .. } = &mut self {
            *what = format!("{name}: {what}").into_boxed_str();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn figures(e: &Error) -> (Option<u64>, u64) {
        match e {
            Error::Resource { asked, limit, .. } => (*asked, *limit),
            other => panic!("expected a resource error, got {other:?}"),
        }
    }

    #[test]
    fn sizes_that_fit_32_bits_are_exact() {
        assert_eq!(elements_for(&[1, 224, 224, 3], 32).unwrap(), 150_528);
        assert_eq!(bytes_for(&[1, 224, 224, 3], DType::F32, 32).unwrap(), 602_112);
        assert_eq!(bytes_for(&[], DType::I8, 32).unwrap(), 1, "a scalar holds one element");
        assert_eq!(bytes_for(&[7, 0, 1 << 30], DType::F32, 32).unwrap(), 0);
        // The largest allocation on a 32-bit target: isize::MAX there, 2^31 - 1 bytes.
        assert_eq!(bytes_for(&[i32::MAX as usize], DType::U8, 32).unwrap(), i32::MAX as usize);
        assert!(bytes_for(&[1 << 31], DType::U8, 32).is_err());
    }

    #[test]
    fn sizes_over_32_bits_are_refused_on_a_32_bit_target() {
        // 2^16 × 2^16 = 2^32 wraps to 0 in u32: refused, with the figure.
        let e = elements_for(&[1 << 16, 1 << 16], 32).unwrap_err();
        assert_eq!(figures(&e), (Some(1 << 32), i32::MAX as u64));
        assert_eq!(e.code().as_str(), "resource_limit");
        // 2^31 floats are 2^33 bytes, not 0 or 2^31.
        let e = bytes_for(&[1 << 31], DType::F32, 32).unwrap_err();
        assert_eq!(figures(&e), (Some(1 << 33), i32::MAX as u64));
        assert!(bytes_for(&[(1 << 31) - 1], DType::F32, 32).is_err());
        // The same shape in 64-bit arithmetic (what a 64-bit target accepts).
        assert_eq!(bytes_u64(&[1 << 31], DType::F32).unwrap(), 1 << 33);
        // The u32 wrap-around a naive product would give, for contrast.
        assert_eq!((1u32 << 16).wrapping_mul(1 << 16), 0);
    }

    #[test]
    fn products_that_overflow_64_bits_are_refused_without_panicking() {
        // PAD of 2^24 per side on rank 8: (2^25 + 1)^8 elements.
        let shape = [(1 << 25) + 1; 8];
        let e = elements_for(&shape, 64).unwrap_err();
        assert_eq!(figures(&e).0, None, "more than 64 bits can say");
        assert!(e.to_string().contains("more than"), "{e}");
        assert!(bytes(&[usize::MAX, 2], DType::I8).is_err());
        assert!(mul_u64(u64::MAX, 2).is_err());
        assert!(add_u64(u64::MAX, 1).is_err());
        assert_eq!(mul(3, 5).unwrap(), 15);
        assert_eq!(add(3, 5).unwrap(), 8);
    }

    #[test]
    fn this_target_uses_its_own_width() {
        let big = [1usize << 16, 1 << 16];
        assert_eq!(elements(&big).is_ok(), ADDRESS_BITS == 64);
        assert_eq!(to_usize(u32::MAX as u64 + 1, ADDRESS_BITS).is_ok(), ADDRESS_BITS == 64);
        assert_eq!(to_usize(1 << 31, ADDRESS_BITS).is_ok(), ADDRESS_BITS == 64, "over isize::MAX on wasm32");
    }

    #[test]
    fn budget_refuses_big_tensors_and_models_with_figures() {
        let b = Budget::default();
        assert_eq!(b.max_model_bytes, 1 << 30);
        assert_eq!(b.max_tensor_bytes, 1 << 28);
        assert_eq!(b.tensor_bytes(&[1, 96, 96, 3], DType::F32, "input").unwrap(), 110_592);
        let e = b.tensor_bytes(&[1, (1 << 31) - 1], DType::F32, "tensor 0 'x'").unwrap_err();
        assert_eq!(figures(&e), (Some(((1u64 << 31) - 1) * 4), 1 << 28));
        let msg = e.to_string();
        assert!(msg.contains("tensor 0 'x'") && msg.contains("8,589,934,588") && msg.contains("268,435,456"), "{msg}");
        assert!(b.check_model(2 << 30, "plan").is_err());
        assert!(b.check_model(1 << 20, "plan").is_ok());
        let small = Budget::with_max_memory(1 << 20);
        assert!(small.tensor_bytes(&[1 << 17], DType::F32, "x").is_err(), "a quarter of 1 MiB per tensor");
        assert!(small.tensor_bytes(&[1 << 16], DType::F32, "x").is_ok());
    }

    #[test]
    fn reader_limit_is_a_multiple_of_the_file_capped_by_the_model() {
        let b = Budget::default();
        assert_eq!(b.reader_limit(0), 16 << 20);
        assert_eq!(b.reader_limit(1 << 20), (4 << 20) + (16 << 20));
        assert_eq!(b.reader_limit(usize::MAX), 1 << 30);
        let mut m = b.reader_meter(1000);
        m.charge(1000).unwrap();
        assert_eq!(m.used(), 1000);
        let e = m.charge(u64::MAX).unwrap_err();
        assert_eq!(figures(&e), (None, b.reader_limit(1000)));
        let e = m.charge(b.reader_limit(1000)).unwrap_err();
        assert_eq!(figures(&e), (Some(b.reader_limit(1000) + 1000), b.reader_limit(1000)));
        assert_eq!(m.used(), 1000, "a refused charge is not counted");
    }
}
