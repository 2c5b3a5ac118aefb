//! Four f32 lanes, the vector the float kernels are written over once: a wasm simd128 `v128` in
//! the wasm builds, a plain array elsewhere (LLVM turns its lane loops into SSE on x86).
//!
//! The relaxed-SIMD build multiplies and adds with `f32x4.relaxed_madd`, which the browser fuses
//! where the CPU has FMA: the product is then not rounded before the addition, so a sum can differ
//! from the simd128 build in its last bits (well inside the 1e-4 relative tolerance the float
//! kernels keep against their references and against LiteRT).
//!
//! Loads and stores take raw pointers: the kernels check the extent of a whole block once, then
//! walk it without a bounds check per element (wasm has no cheap way to elide those).

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32::*;

#[derive(Clone, Copy, Debug)]
pub struct F4(
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))] v128,
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))] [f32; 4],
);

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl F4 {
    #[inline(always)]
    pub fn splat(x: f32) -> F4 {
        F4(f32x4_splat(x))
    }

    /// # Safety
    /// `p..p + 4` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F4 {
        F4(v128_load(p as *const v128))
    }

    /// One value loaded into all four lanes (`v128.load32_splat`: a single broadcast load).
    ///
    /// # Safety
    /// `p` must be readable.
    #[inline(always)]
    pub unsafe fn load_splat(p: *const f32) -> F4 {
        F4(v128_load32_splat(p as *const u32))
    }

    /// # Safety
    /// `p..p + 4` must be writable.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        v128_store(p as *mut v128, self.0)
    }

    /// `self · b + c`.
    #[inline(always)]
    pub fn madd(self, b: F4, c: F4) -> F4 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            F4(f32x4_relaxed_madd(self.0, b.0, c.0))
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            F4(f32x4_add(c.0, f32x4_mul(self.0, b.0)))
        }
    }

    /// `self · b + c`, rounded after the product in every build (as TFLite's reference kernels
    /// compute): for sums whose exact value matters downstream, e.g. a float layer feeding a
    /// hybrid one, which quantizes it again.
    #[inline(always)]
    pub fn mul_add(self, b: F4, c: F4) -> F4 {
        F4(f32x4_add(c.0, f32x4_mul(self.0, b.0)))
    }

    #[inline(always)]
    pub fn plus(self, b: F4) -> F4 {
        F4(f32x4_add(self.0, b.0))
    }

    #[inline(always)]
    pub fn minus(self, b: F4) -> F4 {
        F4(f32x4_sub(self.0, b.0))
    }

    #[inline(always)]
    pub fn times(self, b: F4) -> F4 {
        F4(f32x4_mul(self.0, b.0))
    }

    /// `self.max(lo).min(hi)` lane by lane. A NaN lane comes out as NaN here (as from TFLite's
    /// `std::min(std::max(x, lo), hi)`) and as the bound in the portable version: models do not
    /// produce NaN, and `pmax`/`pmin` are single x86 instructions, unlike `f32x4.max`/`min`.
    #[inline(always)]
    pub fn clamp(self, lo: F4, hi: F4) -> F4 {
        F4(f32x4_pmin(hi.0, f32x4_pmax(lo.0, self.0)))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl F4 {
    #[inline(always)]
    pub fn splat(x: f32) -> F4 {
        F4([x; 4])
    }

    /// # Safety
    /// `p..p + 4` must be readable.
    #[inline(always)]
    pub unsafe fn load(p: *const f32) -> F4 {
        F4(core::ptr::read_unaligned(p as *const [f32; 4]))
    }

    /// # Safety
    /// `p` must be readable.
    #[inline(always)]
    pub unsafe fn load_splat(p: *const f32) -> F4 {
        F4([*p; 4])
    }

    /// # Safety
    /// `p..p + 4` must be writable.
    #[inline(always)]
    pub unsafe fn store(self, p: *mut f32) {
        core::ptr::write_unaligned(p as *mut [f32; 4], self.0)
    }

    /// `self · b + c` (not fused: a fused multiply-add without FMA hardware is a libm call).
    #[inline(always)]
    pub fn madd(self, b: F4, c: F4) -> F4 {
        F4(core::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
    }

    /// `self · b + c`, rounded after the product (as [`F4::madd`] here).
    #[inline(always)]
    pub fn mul_add(self, b: F4, c: F4) -> F4 {
        self.madd(b, c)
    }

    #[inline(always)]
    pub fn plus(self, b: F4) -> F4 {
        F4(core::array::from_fn(|i| self.0[i] + b.0[i]))
    }

    #[inline(always)]
    pub fn minus(self, b: F4) -> F4 {
        F4(core::array::from_fn(|i| self.0[i] - b.0[i]))
    }

    #[inline(always)]
    pub fn times(self, b: F4) -> F4 {
        F4(core::array::from_fn(|i| self.0[i] * b.0[i]))
    }

    /// `self.max(lo).min(hi)` lane by lane (a NaN lane becomes the bound).
    #[inline(always)]
    pub fn clamp(self, lo: F4, hi: F4) -> F4 {
        F4(core::array::from_fn(|i| self.0[i].max(lo.0[i]).min(hi.0[i])))
    }
}

impl F4 {
    /// The first four values of `s` (panics if there are fewer).
    #[inline(always)]
    pub fn from_slice(s: &[f32]) -> F4 {
        let s = &s[..4];
        // SAFETY: `s` holds four values.
        unsafe { F4::load(s.as_ptr()) }
    }

    /// Writes the four lanes to `s[..4]` (panics if `s` is shorter).
    #[inline(always)]
    pub fn write(self, s: &mut [f32]) {
        let s = &mut s[..4];
        // SAFETY: `s` holds four values.
        unsafe { self.store(s.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn lanes_compute_what_scalars_do() {
        let (a, b, c) = ([1.5f32, -2.0, 0.25, 8.0], [2.0f32, 3.0, -4.0, 0.5], [0.5f32, 1.0, 1.0, -4.0]);
        let mut got = [0.0f32; 4];
        F4::from_slice(&a).madd(F4::from_slice(&b), F4::from_slice(&c)).write(&mut got);
        assert_eq!(got, [3.5, -5.0, 0.0, 0.0]);
        F4::from_slice(&a).plus(F4::from_slice(&c)).write(&mut got);
        assert_eq!(got, [2.0, -1.0, 1.25, 4.0]);
        F4::from_slice(&a).minus(F4::from_slice(&c)).write(&mut got);
        assert_eq!(got, [1.0, -3.0, -0.75, 12.0]);
        F4::from_slice(&a).times(F4::from_slice(&b)).write(&mut got);
        assert_eq!(got, [3.0, -6.0, -1.0, 4.0]);
        // SAFETY: a[1] is readable.
        unsafe { F4::load_splat(&a[1]) }.write(&mut got);
        assert_eq!(got, [-2.0; 4]);
    }

    #[test]
    fn clamp_answers_as_f32_max_min_do() {
        let v = [f32::NEG_INFINITY, -3.0, 0.5, 9.0];
        for (lo, hi) in [(-1.0f32, 2.0f32), (f32::NEG_INFINITY, f32::INFINITY), (0.0, 6.0)] {
            let mut got = [0.0f32; 4];
            F4::from_slice(&v).clamp(F4::splat(lo), F4::splat(hi)).write(&mut got);
            assert_eq!(got, v.map(|x| x.max(lo).min(hi)), "clamp to [{lo}, {hi}]");
            // A NaN lane: NaN or the lower bound (the build decides), never another value.
            F4::splat(f32::NAN).clamp(F4::splat(lo), F4::splat(hi)).write(&mut got);
            assert!(got.iter().all(|g| g.is_nan() || *g == lo), "NaN clamped to [{lo}, {hi}]: {got:?}");
        }
    }
}
