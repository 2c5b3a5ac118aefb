//! AVERAGE_POOL_2D and MAX_POOL_2D over NHWC data. The average counts only the taps inside the
//! image, as TFLite does.
//!
//! The fast pools (float here, int8 in [`super::int8::pool`]) walk output pixels: the input rows
//! of a window's taps (all channels of one tap are contiguous in NHWC) are folded into per-channel
//! lanes with plain slice loops the compiler vectorizes ([`window`], [`each_pixel`]). [`pool`] is
//! the reference walk, one iterator over the taps per output value; the float pools' plain twins
//! use it, and fold each channel's taps in the same order, so both give identical bits.

use super::conv::ConvShape;

/// Float AVERAGE_POOL_2D: the sum of the taps inside the image (in tap order) divided by their
/// count, clamped to `min..=max`.
pub fn average_pool_f32(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
    each_pixel(s, out, |pixel, o| {
        o.fill(0.0);
        let n = window(s, input, pixel, |row| o.iter_mut().zip(row).for_each(|(a, &v)| *a += v));
        for a in o.iter_mut() {
            *a = (if n == 0 { 0.0 } else { *a / n as f32 }).max(min).min(max);
        }
    });
}

/// Float MAX_POOL_2D: the largest tap inside the image, clamped to `min..=max`.
pub fn max_pool_f32(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
    each_pixel(s, out, |pixel, o| {
        o.fill(f32::NEG_INFINITY);
        window(s, input, pixel, |row| o.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v)));
        o.iter_mut().for_each(|m| *m = m.max(min).min(max));
    });
}

/// Calls `fold(row)` with the `in_c` inputs of every valid tap of output pixel `(b, oy, ox)`, taps
/// in row-major order, and returns how many taps there were.
#[inline(always)]
pub(crate) fn window<T>(
    s: &ConvShape,
    input: &[T],
    (b, oy, ox): (usize, usize, usize),
    mut fold: impl FnMut(&[T]),
) -> usize {
    let c = s.in_c;
    let (ys, xs) = (s.win.h.valid_taps(oy), s.win.w.valid_taps(ox));
    for ky in ys.clone() {
        let Some(iy) = s.win.h.tap(oy, ky) else { continue };
        for kx in xs.clone() {
            let Some(ix) = s.win.w.tap(ox, kx) else { continue };
            fold(&input[((b * s.in_h() + iy) * s.in_w() + ix) * c..][..c]);
        }
    }
    ys.len() * xs.len()
}

/// Every output pixel `(b, oy, ox)` in order with its `in_c` output values.
#[inline(always)]
pub(crate) fn each_pixel<T>(s: &ConvShape, out: &mut [T], mut f: impl FnMut((usize, usize, usize), &mut [T])) {
    let c = s.in_c;
    let mut at = 0;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                f((b, oy, ox), &mut out[at..at + c]);
                at += c;
            }
        }
    }
}

/// The reference walk: every output element; `f` gets an iterator over the base offsets of the
/// valid taps (add the channel) and the channel.
pub fn pool<T: Copy, F>(s: &ConvShape, _input: &[T], out: &mut [T], f: F)
where
    F: Fn(&mut dyn Iterator<Item = usize>, usize) -> T,
{
    let c = s.in_c;
    for b in 0..s.batch {
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                let base = ((b * s.out_h() + oy) * s.out_w() + ox) * c;
                for ch in 0..c {
                    let mut taps = s.win.h.valid_taps(oy).flat_map(|ky| {
                        let iy = s.win.h.tap(oy, ky).unwrap_or(0);
                        s.win.w.valid_taps(ox).map(move |kx| {
                            let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                            ((b * s.in_h() + iy) * s.in_w() + ix) * c
                        })
                    });
                    out[base + ch] = f(&mut taps, ch);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;

    fn average_reference(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
        pool(s, input, out, |taps, c| {
            let (mut sum, mut n) = (0.0f32, 0usize);
            for v in taps.map(|i| input[i + c]) {
                sum += v;
                n += 1;
            }
            (if n == 0 { 0.0 } else { sum / n as f32 }).max(min).min(max)
        });
    }

    fn max_reference(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
        pool(s, input, out, |taps, c| taps.map(|i| input[i + c]).fold(f32::NEG_INFINITY, f32::max).max(min).min(max));
    }

    /// Random shapes against the per-value reference walk, bit for bit: channels around the
    /// vector widths, windows up to the whole image, strides, both paddings, batches, clamps.
    #[test]
    fn float_pools_equal_reference() {
        let mut rng = Rng::new(43);
        let mut cases = 0;
        while cases < 300 {
            let (h, w) = (1 + rng.below(9), 1 + rng.below(9));
            let (fh, fw) = (1 + rng.below(h.max(2)), 1 + rng.below(w.max(2)));
            let (sh, sw) = (1 + rng.below(3), 1 + rng.below(3));
            let pad = if rng.below(2) == 0 { Padding::Same } else { Padding::Valid };
            let (Some(wh), Some(ww)) = (Window::new(pad, h, fh, sh, 1), Window::new(pad, w, fw, sw, 1)) else {
                continue;
            };
            let c = [1, 3, 4, 7, 8, 15, 16, 17, 33, 64][rng.below(10)];
            let s = ConvShape { batch: 1 + rng.below(2), in_c: c, out_c: c, win: Window2D { h: wh, w: ww } };
            if s.output_len() == 0 {
                continue;
            }
            cases += 1;
            let input: Vec<f32> = (0..s.input_len()).map(|_| rng.below(20001) as f32 / 997.0 - 10.0).collect();
            let (min, max) = if rng.below(2) == 0 { (f32::NEG_INFINITY, f32::INFINITY) } else { (0.0, 6.0) };
            let (mut want, mut got) = (vec![0f32; s.output_len()], vec![1f32; s.output_len()]);
            average_reference(&s, &input, min, max, &mut want);
            average_pool_f32(&s, &input, min, max, &mut got);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "avg {s:?}"
            );
            max_reference(&s, &input, min, max, &mut want);
            max_pool_f32(&s, &input, min, max, &mut got);
            assert_eq!(got, want, "max {s:?}");
        }
    }
}
