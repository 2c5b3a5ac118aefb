//! The wasm32 allocator: the standard one (dlmalloc), except that blocks of [`LARGE`] bytes or
//! more start on a 64-byte boundary.
//!
//! dlmalloc aligns blocks to 8 bytes in wasm32. The kernels read and write their buffers
//! (activations, packed weights, the depthwise kernel's row pairs) 16 bytes at a time, so at an
//! address 8 past a multiple of 16 one access in four straddles a 64-byte cache line, which x86
//! CPUs serve more slowly; and where a buffer landed depended on everything allocated before it,
//! so the same kernel ran at different speeds in the two builds. Measured in Node on the Xeon
//! without AVX-VNNI, relaxed-SIMD build, interleaved invoke loops: VWW int8 0.457 → 0.436 ms
//! (medians; its depthwise row pairs had landed 8 bytes off), ResNet-8 int8 0.509 → 0.500 ms,
//! KWS int8 0.156 → 0.153 ms; VWW `auto` quantization in one thread 554–565 → 540 ms.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks this large or larger are aligned to [`LINE`] bytes (smaller ones, many and short-lived,
/// keep dlmalloc's cheaper path).
const LARGE: usize = 4096;
/// A cache line.
const LINE: usize = 64;

pub struct LineAligned;

/// The layout asked of the system allocator for `l`: a function of `l` alone, so a block is
/// freed with the layout it was allocated with.
fn widened(l: Layout) -> Layout {
    if l.size() >= LARGE && l.align() < LINE {
        Layout::from_size_align(l.size(), LINE).unwrap_or(l)
    } else {
        l
    }
}

// SAFETY: every block comes from `System` with `widened(layout)` and goes back to it with the
// same; `realloc` hands `System` only blocks that were not widened and stay so, and moves the
// others itself (allocate, copy, free), so `System` never sees a block under another alignment.
unsafe impl GlobalAlloc for LineAligned {
    // `#[inline(never)]` on each: inlined, these bodies (and dlmalloc's behind them) were copied
    // into every allocating function, 28 KB more gzipped in each build.
    #[inline(never)]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        System.alloc(widened(l))
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        System.alloc_zeroed(widened(l))
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, widened(l))
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, l.align()) else { return core::ptr::null_mut() };
        if widened(l) == l && widened(new) == new {
            return System.realloc(p, l, new_size); // small to small: dlmalloc's, in place where it can
        }
        let q = self.alloc(new);
        if !q.is_null() {
            core::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
            self.dealloc(p, l);
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates `size` bytes of alignment `align`, filled with a pattern.
    fn filled(size: usize, align: usize) -> (*mut u8, Layout) {
        let l = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a nonzero size; the block is written within its size.
        let p = unsafe { LineAligned.alloc(l) };
        assert!(!p.is_null());
        (0..size).for_each(|i| unsafe { *p.add(i) = i as u8 });
        (p, l)
    }

    fn kept(p: *const u8, n: usize) -> bool {
        // SAFETY: the caller's block holds at least n bytes.
        (0..n).all(|i| unsafe { *p.add(i) } == i as u8)
    }

    #[test]
    fn large_blocks_start_on_a_line_and_keep_their_bytes_across_reallocations() {
        for (size, align) in [(LARGE, 1), (LARGE + 3, 2), (3 * LARGE, 4), (LARGE, 128)] {
            let (p, l) = filled(size, align);
            assert_eq!(p as usize % LINE.max(align), 0, "{size} bytes, align {align}");
            // SAFETY: p was allocated with l.
            unsafe { LineAligned.dealloc(p, l) };
        }
        // Small to large, large to larger, large to small: each move keeps the bytes it can.
        let (p, l) = filled(100, 1);
        let steps = [(100, 5 * LARGE), (5 * LARGE, 9 * LARGE), (9 * LARGE, 50)];
        let (mut p, mut l) = (p, l);
        for (from, to) in steps {
            assert_eq!(l.size(), from);
            // SAFETY: p holds `from` bytes allocated with l; the new block is written within `to`.
            let q = unsafe { LineAligned.realloc(p, l, to) };
            assert!(!q.is_null() && kept(q, from.min(to)), "{from} -> {to}");
            if to >= LARGE {
                assert_eq!(q as usize % LINE, 0, "{from} -> {to}");
                (from..to).for_each(|i| unsafe { *q.add(i) = i as u8 });
            }
            (p, l) = (q, Layout::from_size_align(to, 1).unwrap());
        }
        // SAFETY: p was last reallocated to l's size.
        unsafe { LineAligned.dealloc(p, l) };
    }

    #[test]
    fn small_blocks_keep_the_layout_asked_for() {
        let l = Layout::from_size_align(LARGE - 1, 8).unwrap();
        assert_eq!(widened(l), l);
        assert_eq!(widened(Layout::from_size_align(LARGE, 8).unwrap()).align(), LINE);
        assert_eq!(widened(Layout::from_size_align(LARGE, 256).unwrap()).align(), 256);
    }
}
