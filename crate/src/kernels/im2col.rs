//! The window walk of a convolution, written once: [`im2col`] copies each output pixel's patch
//! (`[kh][kw][in_c]`, zeros where the filter hangs over the edge) into a row, and [`col2im`]
//! scatters rows back, adding (the backward of im2col). Pixels are numbered `(b·out_h + oy)·out_w + ox`.

use super::conv::ConvShape;

/// Fills `cols` (`n` rows of `patch_len`) with the patches of output pixels `p0..p0 + n`.
pub fn im2col<T: Copy>(s: &ConvShape, input: &[T], pad: T, p0: usize, n: usize, cols: &mut [T]) {
    let (c, k) = (s.in_c, s.patch_len());
    let per_image = s.out_h() * s.out_w();
    for (r, p) in (p0..p0 + n).enumerate() {
        let (b, rem) = (p / per_image, p % per_image);
        let (oy, ox) = (rem / s.out_w(), rem % s.out_w());
        let row = &mut cols[r * k..(r + 1) * k];
        for ky in 0..s.kh() {
            let iy = s.win.h.tap(oy, ky);
            for kx in 0..s.kw() {
                let dst = &mut row[(ky * s.kw() + kx) * c..][..c];
                match (iy, s.win.w.tap(ox, kx)) {
                    (Some(iy), Some(ix)) => {
                        dst.copy_from_slice(&input[((b * s.in_h() + iy) * s.in_w() + ix) * c..][..c])
                    }
                    _ => dst.fill(pad),
                }
            }
        }
    }
}

/// Adds each row of `cols` (the patches of output pixels `p0..p0 + n`) back into `dx`, the
/// gradient of the input, skipping taps in the padding.
pub fn col2im(s: &ConvShape, cols: &[f32], p0: usize, n: usize, dx: &mut [f32]) {
    let (c, k) = (s.in_c, s.patch_len());
    let per_image = s.out_h() * s.out_w();
    for (r, p) in (p0..p0 + n).enumerate() {
        let (b, rem) = (p / per_image, p % per_image);
        let (oy, ox) = (rem / s.out_w(), rem % s.out_w());
        let row = &cols[r * k..(r + 1) * k];
        for ky in s.win.h.valid_taps(oy) {
            let iy = s.win.h.tap(oy, ky).unwrap_or(0);
            for kx in s.win.w.valid_taps(ox) {
                let ix = s.win.w.tap(ox, kx).unwrap_or(0);
                let src = &row[(ky * s.kw() + kx) * c..][..c];
                let dst = &mut dx[((b * s.in_h() + iy) * s.in_w() + ix) * c..][..c];
                dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Padding;
    use crate::kernels::geometry::{Window, Window2D};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for any x, y: the backward is exact.
        for &(pad, stride, dil) in &[(Padding::Same, 1, 1), (Padding::Valid, 2, 1), (Padding::Same, 2, 2)] {
            let win = Window2D {
                h: Window::new(pad, 5, 3, stride, dil).unwrap(),
                w: Window::new(pad, 6, 2, stride, dil).unwrap(),
            };
            let s = ConvShape { batch: 2, in_c: 3, out_c: 1, win };
            let x: Vec<f32> = (0..s.input_len()).map(|i| (i as f32 * 0.37).sin()).collect();
            let pixels = s.batch * s.out_h() * s.out_w();
            let y: Vec<f32> = (0..pixels * s.patch_len()).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut cols = vec![0.0; y.len()];
            im2col(&s, &x, 0.0, 0, pixels, &mut cols);
            let mut dx = vec![0.0; x.len()];
            col2im(&s, &y, 0, pixels, &mut dx);
            let lhs: f64 = cols.iter().zip(&y).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
        }
    }
}
