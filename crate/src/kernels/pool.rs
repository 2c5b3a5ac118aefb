//! AVERAGE_POOL_2D and MAX_POOL_2D over NHWC float data. The average counts only the taps inside
//! the image, as TFLite does.

use super::conv::ConvShape;

pub fn average_pool_f32(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
    pool(s, input, out, |taps, c| {
        let mut sum = 0.0f32;
        let mut n = 0usize;
        for v in taps.map(|i| input[i + c]) {
            sum += v;
            n += 1;
        }
        (if n == 0 { 0.0 } else { sum / n as f32 }).max(min).min(max)
    });
}

pub fn max_pool_f32(s: &ConvShape, input: &[f32], min: f32, max: f32, out: &mut [f32]) {
    pool(s, input, out, |taps, c| {
        let m = taps.map(|i| input[i + c]).fold(f32::NEG_INFINITY, f32::max);
        m.max(min).min(max)
    });
}

/// Walks every output element; `f` gets an iterator over the base offsets of the valid taps (add the
/// channel) and the channel.
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
