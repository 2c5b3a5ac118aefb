//! Output sizes and padding of sliding-window operators, as TFLite computes them.

use crate::ir::Padding;

/// One spatial dimension of a sliding window: sizes, stride, dilation and the resulting padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub input: usize,
    pub filter: usize,
    pub stride: usize,
    pub dilation: usize,
    pub output: usize,
    /// Padding before the first element (TFLite puts the odd extra element after).
    pub pad_before: usize,
}

impl Window {
    /// Computes output size and padding. `None` when the window does not fit (VALID padding with a
    /// filter larger than the input) or a parameter is zero.
    pub fn new(padding: Padding, input: usize, filter: usize, stride: usize, dilation: usize) -> Option<Window> {
        if stride == 0 || dilation == 0 || filter == 0 {
            return None;
        }
        let effective = (filter - 1).checked_mul(dilation)? + 1;
        let output = match padding {
            Padding::Same => input.div_ceil(stride),
            Padding::Valid => {
                if input < effective {
                    return None;
                }
                (input - effective) / stride + 1
            }
        };
        let needed = (output.saturating_sub(1)).checked_mul(stride)? + effective;
        let total = needed.saturating_sub(input);
        Some(Window { input, filter, stride, dilation, output, pad_before: total / 2 })
    }

    /// Input coordinate of filter tap `k` for output `o`, or `None` in the padding.
    #[inline]
    pub fn tap(&self, o: usize, k: usize) -> Option<usize> {
        let pos = (o * self.stride + k * self.dilation) as isize - self.pad_before as isize;
        (pos >= 0 && (pos as usize) < self.input).then_some(pos as usize)
    }

    /// The range of taps `k` that land inside the input for output `o`.
    #[inline]
    pub fn valid_taps(&self, o: usize) -> std::ops::Range<usize> {
        let origin = (o * self.stride) as isize - self.pad_before as isize;
        let d = self.dilation as isize;
        // first k with origin + k*d >= 0
        let start = if origin >= 0 { 0 } else { ((-origin) + d - 1) / d };
        // last k with origin + k*d < input
        let limit = self.input as isize - origin; // need k*d < limit
        let end = if limit <= 0 { 0 } else { (limit + d - 1) / d };
        let start = (start as usize).min(self.filter);
        let end = (end as usize).min(self.filter);
        start..end.max(start)
    }
}

/// A 2-D window over NHWC data: (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2D {
    pub h: Window,
    pub w: Window,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn same_padding_matches_tflite() {
        // 96 wide, 3x3 stride 2: out 48, total pad = 47*2+3-96 = 1 -> 0 before.
        let w = Window::new(Padding::Same, 96, 3, 2, 1).unwrap();
        assert_eq!((w.output, w.pad_before), (48, 0));
        // 5 wide, 3x3 stride 1: out 5, pad 1 before.
        let w = Window::new(Padding::Same, 5, 3, 1, 1).unwrap();
        assert_eq!((w.output, w.pad_before), (5, 1));
        // dilation 2 widens a 3-tap filter to 5.
        let w = Window::new(Padding::Same, 7, 3, 1, 2).unwrap();
        assert_eq!((w.output, w.pad_before), (7, 2));
    }

    #[test]
    fn valid_padding_and_taps() {
        let w = Window::new(Padding::Valid, 10, 3, 2, 1).unwrap();
        assert_eq!((w.output, w.pad_before), (4, 0));
        assert!(Window::new(Padding::Valid, 2, 3, 1, 1).is_none());
        assert!(Window::new(Padding::Same, 2, 3, 0, 1).is_none());
        let s = Window::new(Padding::Same, 5, 3, 1, 1).unwrap();
        for o in 0..5 {
            let expect: Vec<usize> = (0..3).filter(|&k| s.tap(o, k).is_some()).collect();
            let got: Vec<usize> = s.valid_taps(o).collect();
            assert_eq!(got, expect, "output {o}");
        }
        let d = Window::new(Padding::Same, 6, 3, 2, 2).unwrap();
        for o in 0..d.output {
            let expect: Vec<usize> = (0..3).filter(|&k| d.tap(o, k).is_some()).collect();
            assert_eq!(d.valid_taps(o).collect::<Vec<_>>(), expect);
        }
    }
}
