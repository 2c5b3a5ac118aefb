//! Fast int8 AVERAGE_POOL_2D and MAX_POOL_2D: per output pixel, the window's input rows (all
//! channels of one tap are contiguous in NHWC) are folded into per-channel lanes with plain slice
//! loops the compiler vectorizes ([`super::super::pool::window`], shared with the float pools),
//! instead of one iterator walk per output value. The reference
//! twins are [`super::pointwise::average_pool`] and [`super::pointwise::max_pool`].

use super::super::conv::ConvShape;
use super::super::pool::{each_pixel, window};

/// Int8 AVERAGE_POOL_2D as TFLite computes it: the sum of the taps inside the image divided by
/// their count, rounding halves away from zero, then clamped to `min..=max`.
pub fn average_pool(s: &ConvShape, input: &[i8], min: i32, max: i32, out: &mut [i8]) {
    let mut acc = vec![0i32; s.in_c];
    each_pixel(s, out, |pixel, o| {
        acc.fill(0);
        let n = window(s, input, pixel, |row| {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a = a.wrapping_add(v as i32));
        });
        let Ok(n) = i32::try_from(n) else { return o.fill(0) };
        if n == 0 {
            return o.fill(0);
        }
        for (o, &a) in o.iter_mut().zip(&acc) {
            let avg = if a > 0 { a.wrapping_add(n / 2) / n } else { a.wrapping_sub(n / 2) / n };
            *o = avg.clamp(min, max) as i8;
        }
    });
}

/// Int8 MAX_POOL_2D: the largest tap inside the image (-128 for none), clamped to `min..=max`.
pub fn max_pool(s: &ConvShape, input: &[i8], min: i32, max: i32, out: &mut [i8]) {
    let (lo, hi) = (min.clamp(-128, 127) as i8, max.clamp(-128, 127) as i8);
    each_pixel(s, out, |pixel, o| {
        o.fill(i8::MIN);
        window(s, input, pixel, |row| o.iter_mut().zip(row).for_each(|(m, &v)| *m = (*m).max(v)));
        o.iter_mut().for_each(|m| *m = (*m).max(lo).min(hi));
    });
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::pointwise;
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::{Window, Window2D};
    use crate::rng::Rng;

    /// Random shapes against the reference loops: channels around the vector widths, windows up
    /// to the whole image, strides, both paddings, batches, activation clamps (including
    /// `min > max`-free narrow ones), values over the whole int8 range.
    #[test]
    fn fast_pools_equal_reference() {
        let mut rng = Rng::new(41);
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
            let input: Vec<i8> = (0..s.input_len()).map(|_| rng.below(256) as i32 as i8 ^ i8::MIN).collect();
            let (min, max) = match rng.below(3) {
                0 => (-128, 127),
                1 => (-5, 127),
                _ => (-128 + rng.below(100) as i32, 20 + rng.below(100) as i32),
            };
            for avg in [true, false] {
                let (mut want, mut got) = (vec![0i8; s.output_len()], vec![1i8; s.output_len()]);
                if avg {
                    pointwise::average_pool(&s, &input, min, max, &mut want);
                    average_pool(&s, &input, min, max, &mut got);
                } else {
                    pointwise::max_pool(&s, &input, min, max, &mut want);
                    max_pool(&s, &input, min, max, &mut got);
                }
                assert_eq!(got, want, "{s:?} avg={avg} clamp {min}..={max}");
            }
        }
    }
}
