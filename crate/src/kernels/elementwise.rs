//! Element-wise operators: NumPy-style broadcasting for binary operators, and float activations.

use super::f32x4::F4;

/// The broadcast result shape of two shapes, or `None` if they are incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Row-major strides of `shape` aligned to `rank` dimensions, 0 where the dimension broadcasts.
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let mut strides = vec![0; rank];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        let oi = i + rank - shape.len();
        strides[oi] = if shape[i] == 1 && out[oi] != 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

/// `out[i] = f(a[ia], b[ib])` over the broadcast of `a_shape` and `b_shape` (`out_shape`).
pub fn binary<T: Copy, U, F: Fn(T, T) -> U>(
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out_shape: &[usize],
    out: &mut [U],
    f: F,
) {
    if a.len() == out.len() && b.len() == out.len() {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    if b.len() == 1 && a.len() == out.len() {
        for (o, &x) in out.iter_mut().zip(a) {
            *o = f(x, b[0]);
        }
        return;
    }
    if a.len() == 1 && b.len() == out.len() {
        for (o, &y) in out.iter_mut().zip(b) {
            *o = f(a[0], y);
        }
        return;
    }
    let rank = out_shape.len();
    if rank == 0 {
        return;
    }
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let inner = out_shape[rank - 1];
    let mut idx = vec![0usize; rank];
    let rows = out.len() / inner.max(1);
    for row in 0..rows {
        let mut ia = 0;
        let mut ib = 0;
        for d in 0..rank - 1 {
            ia += idx[d] * sa[d];
            ib += idx[d] * sb[d];
        }
        let o = &mut out[row * inner..(row + 1) * inner];
        for (j, o) in o.iter_mut().enumerate() {
            *o = f(a[ia + j * sa[rank - 1]], b[ib + j * sb[rank - 1]]);
        }
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// `out[i] = clamp(f(a[i], b[i]))` for two float operands of the output's length (the common case
/// of float ADD, SUB and MUL with a fused activation), four lanes at a time: `fv` is `f` over
/// [`F4`] and must compute the same IEEE operation. Equal to [`binary`] with
/// `|x, y| f(x, y).max(lo).min(hi)` for every non-NaN result (the scalar `max`/`min` are not single
/// wasm instructions, [`F4::clamp`] is two); the leftover `len % 4` values take that scalar form.
pub fn same_shape_f32(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    (lo, hi): (f32, f32),
    f: impl Fn(f32, f32) -> f32,
    fv: impl Fn(F4, F4) -> F4,
) {
    assert!(a.len() == out.len() && b.len() == out.len(), "operands and output differ in length");
    let (vlo, vhi) = (F4::splat(lo), F4::splat(hi));
    let done = out.len() - out.len() % 4;
    for ((o, x), y) in out.chunks_exact_mut(4).zip(a.chunks_exact(4)).zip(b.chunks_exact(4)) {
        fv(F4::from_slice(x), F4::from_slice(y)).clamp(vlo, vhi).write(o);
    }
    for ((o, &x), &y) in out[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
        *o = f(x, y).max(lo).min(hi);
    }
}

pub fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub fn hard_swish(x: f32) -> f32 {
    x * (x + 3.0).clamp(0.0, 6.0) / 6.0
}

pub fn leaky_relu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        x * alpha
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 1, 3], &[4, 1]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shape(&[3], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shape(&[2], &[3]), None);
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2,3]
        let b = [10.0f32, 20.0]; // [2,1]
        let mut out = [0.0f32; 6];
        binary(&a, &[2, 3], &b, &[2, 1], &[2, 3], &mut out, |x, y| x + y);
        assert_eq!(out, [11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
        let c = [1.0f32, 2.0, 3.0]; // [3]
        binary(&b, &[2, 1], &c, &[3], &[2, 3], &mut out, |x, y| x * y);
        assert_eq!(out, [10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    }

    /// The vector path against the broadcasting one, bit for bit: every length around the four
    /// lanes, each of the three operators, with and without a clamp.
    #[test]
    fn same_shape_f32_matches_binary() {
        let mut rng = crate::rng::Rng::new(11);
        type Pair = (fn(f32, f32) -> f32, fn(F4, F4) -> F4);
        let ops: [Pair; 3] = [(|x, y| x + y, F4::plus), (|x, y| x - y, F4::minus), (|x, y| x * y, F4::times)];
        for len in (0..=13).chain([64, 67]) {
            let a: Vec<f32> = (0..len).map(|_| rng.normal() * 3.0).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.normal() * 3.0).collect();
            for (lo, hi) in [(f32::NEG_INFINITY, f32::INFINITY), (0.0, 6.0), (-1.0, 1.0)] {
                for (i, (f, fv)) in ops.iter().enumerate() {
                    let mut want = vec![9.0; len];
                    binary(&a, &[len], &b, &[len], &[len], &mut want, |x, y| f(x, y).max(lo).min(hi));
                    let mut got = vec![9.0; len];
                    same_shape_f32(&a, &b, &mut got, (lo, hi), f, fv);
                    let (w, g): (Vec<u32>, Vec<u32>) =
                        (want.iter().map(|v| v.to_bits()).collect(), got.iter().map(|v| v.to_bits()).collect());
                    assert_eq!(g, w, "op {i}, len {len}, clamp [{lo}, {hi}]");
                }
            }
        }
    }
}
