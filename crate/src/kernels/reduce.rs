//! SOFTMAX, MEAN and REDUCE_MAX.

/// Softmax over the last dimension (`depth` values per row), with TFLite's `beta`.
pub fn softmax_f32(input: &[f32], depth: usize, beta: f32, out: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (x, o) in input.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for (o, &v) in o.iter_mut().zip(x) {
            *o = ((v - max) * beta).exp();
            sum += *o;
        }
        for o in o.iter_mut() {
            *o /= sum;
        }
    }
}

/// Normalizes reduction axes (negative counts from the end) into a per-dimension flag.
pub fn reduced_dims(axes: &[i64], rank: usize) -> Option<Vec<bool>> {
    let mut reduced = vec![false; rank];
    for &a in axes {
        let a = if a < 0 { a + rank as i64 } else { a };
        if a < 0 || a >= rank as i64 {
            return None;
        }
        reduced[a as usize] = true;
    }
    Some(reduced)
}

/// For each input element, the index of the output element it reduces into.
pub fn reduce_index_map(shape: &[usize], reduced: &[bool]) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let rank = shape.len();
    let mut out_strides = vec![0usize; rank];
    let mut s = 1;
    for d in (0..rank).rev() {
        if !reduced[d] {
            out_strides[d] = s;
            s *= shape[d];
        }
    }
    let mut map = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        map.push(idx.iter().zip(&out_strides).map(|(i, s)| i * s).sum());
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    map
}

pub fn mean_f32(input: &[f32], map: &[usize], out: &mut [f32]) {
    let mut count = vec![0usize; out.len()];
    out.fill(0.0);
    for (&v, &o) in input.iter().zip(map) {
        out[o] += v;
        count[o] += 1;
    }
    for (o, c) in out.iter_mut().zip(count) {
        if c > 0 {
            *o /= c as f32;
        }
    }
}

pub fn max_f32(input: &[f32], map: &[usize], out: &mut [f32]) {
    out.fill(f32::NEG_INFINITY);
    for (&v, &o) in input.iter().zip(map) {
        out[o] = out[o].max(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut out = [0.0f32; 6];
        softmax_f32(&[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], 3, 1.0, &mut out);
        assert!((out[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((out[3] - 1.0 / 3.0).abs() < 1e-6);
        assert!(out[2] > out[1] && out[1] > out[0]);
    }

    #[test]
    fn mean_over_spatial_axes() {
        // [1, 2, 2, 2] -> mean over axes 1,2
        let x = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let red = reduced_dims(&[1, -2], 4).unwrap();
        let map = reduce_index_map(&[1, 2, 2, 2], &red);
        let mut out = [0.0f32; 2];
        mean_f32(&x, &map, &mut out);
        assert_eq!(out, [2.5, 25.0]);
        max_f32(&x, &map, &mut out);
        assert_eq!(out, [4.0, 40.0]);
        assert!(reduced_dims(&[4], 4).is_none());
    }
}
