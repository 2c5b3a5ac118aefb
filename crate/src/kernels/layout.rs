//! Data movement: TRANSPOSE, PAD, CONCATENATION, STRIDED_SLICE. Generic over the element type, so
//! float and int8 graphs share them.

use crate::ir::StridedSlice;

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Output `d` takes input dimension `perm[d]`.
pub fn transpose<T: Copy>(input: &[T], shape: &[usize], perm: &[usize], out: &mut [T]) {
    let sources = transpose_sources(shape, perm, out.len());
    for (o, s) in out.iter_mut().zip(sources) {
        *o = input[s];
    }
}

/// For each of the first `len` outputs of [`transpose`], the input it copies. Apart from the
/// element type, so each type's copy stays a short loop.
#[inline(never)]
fn transpose_sources(shape: &[usize], perm: &[usize], len: usize) -> Vec<usize> {
    let rank = shape.len();
    let in_strides = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let step: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut idx = vec![0usize; rank];
    let mut sources = Vec::with_capacity(len);
    for _ in 0..len {
        sources.push(idx.iter().zip(&step).map(|(i, s)| i * s).sum());
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    sources
}

/// Pads each dimension by `pads[d] = (before, after)` with `value`.
pub fn pad<T: Copy>(input: &[T], shape: &[usize], pads: &[(usize, usize)], value: T, out: &mut [T]) {
    let rank = shape.len();
    let out_shape: Vec<usize> = shape.iter().zip(pads).map(|(s, (a, b))| s + a + b).collect();
    let out_strides = strides(&out_shape);
    out.fill(value);
    if rank == 0 {
        if let (Some(o), Some(i)) = (out.first_mut(), input.first()) {
            *o = *i;
        }
        return;
    }
    let inner = shape[rank - 1];
    let mut idx = vec![0usize; rank];
    for row in input.chunks(inner.max(1)) {
        if inner == 0 {
            break;
        }
        let dst: usize = (0..rank).map(|d| (idx[d] + pads[d].0) * out_strides[d]).sum();
        out[dst..dst + inner].copy_from_slice(row);
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Concatenates inputs along `axis`; `shapes[i]` is the shape of `inputs[i]`.
pub fn concat<T: Copy>(inputs: &[&[T]], shapes: &[&[usize]], axis: usize, out: &mut [T]) {
    let outer: usize = shapes[0][..axis].iter().product();
    let mut pos = 0;
    for o in 0..outer {
        for (x, s) in inputs.iter().zip(shapes) {
            let chunk: usize = s[axis..].iter().product();
            out[pos..pos + chunk].copy_from_slice(&x[o * chunk..(o + 1) * chunk]);
            pos += chunk;
        }
    }
}

/// A resolved strided slice: per input dimension, start, stride and count; and the output shape
/// (shrunk dimensions dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct SliceSpec {
    pub start: Vec<i64>,
    pub stride: Vec<i64>,
    pub count: Vec<usize>,
    pub out_shape: Vec<usize>,
}

/// Resolves STRIDED_SLICE operands with TFLite's clamping rules. Ellipsis and new-axis masks are not
/// supported (`Err` says so); neither is a zero stride.
pub fn strided_slice_spec(
    shape: &[usize],
    begin: &[i64],
    end: &[i64],
    strides_in: &[i64],
    o: &StridedSlice,
) -> Result<SliceSpec, String> {
    let rank = shape.len();
    if o.ellipsis_mask != 0 || o.new_axis_mask != 0 {
        return Err("STRIDED_SLICE with ellipsis_mask or new_axis_mask".into());
    }
    if begin.len() != end.len() || begin.len() != strides_in.len() || begin.len() > rank {
        return Err(format!(
            "begin/end/strides lengths {}/{}/{} do not fit a rank-{rank} input",
            begin.len(),
            end.len(),
            strides_in.len()
        ));
    }
    let (mut start, mut stride, mut count, mut out_shape) = (vec![], vec![], vec![], vec![]);
    for d in 0..rank {
        let dim = shape[d] as i64;
        let (b, e, s) = if d < begin.len() { (begin[d], end[d], strides_in[d]) } else { (0, dim, 1) };
        let masked = |m: u32| d < begin.len() && (m >> d) & 1 == 1;
        if s == 0 {
            return Err(format!("stride 0 in dimension {d}"));
        }
        let shrink = masked(o.shrink_axis_mask);
        let clamp = |v: i64| if s > 0 { v.clamp(0, dim) } else { v.clamp(-1, dim - 1) };
        let norm = |v: i64| if v < 0 { v + dim } else { v };
        let first = if masked(o.begin_mask) && !shrink {
            if s > 0 {
                0
            } else {
                dim - 1
            }
        } else {
            clamp(norm(b))
        };
        let (first, s) = if shrink { (norm(b), 1) } else { (first, s) };
        let stop = if shrink {
            first + 1
        } else if o.offset {
            clamp(first + e)
        } else if masked(o.end_mask) {
            if s > 0 {
                dim
            } else {
                -1
            }
        } else {
            clamp(norm(e))
        };
        if shrink && (first < 0 || first >= dim) {
            return Err(format!("shrink index {b} out of range for dimension {d} of size {dim}"));
        }
        let n = if s > 0 { (stop - first + s - 1).div_euclid(s) } else { (first - stop + (-s) - 1).div_euclid(-s) };
        let n = n.max(0) as usize;
        start.push(first);
        stride.push(s);
        count.push(n);
        if !shrink {
            out_shape.push(n);
        }
    }
    Ok(SliceSpec { start, stride, count, out_shape })
}

pub fn strided_slice<T: Copy>(input: &[T], shape: &[usize], spec: &SliceSpec, out: &mut [T]) {
    let rank = shape.len();
    let st = strides(shape);
    let total: usize = spec.count.iter().product();
    let mut idx = vec![0usize; rank];
    for o in out.iter_mut().take(total) {
        let src: i64 = (0..rank).map(|d| (spec.start[d] + idx[d] as i64 * spec.stride[d]) * st[d] as i64).sum();
        *o = input[src as usize];
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < spec.count[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn transpose_nhwc_to_nchw() {
        let x: Vec<i32> = (0..12).collect(); // [1, 2, 3, 2]
        let mut out = vec![0; 12];
        transpose(&x, &[1, 2, 3, 2], &[0, 3, 1, 2], &mut out);
        assert_eq!(out, vec![0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]);
    }

    #[test]
    fn pad_and_concat() {
        let x = [1, 2, 3, 4]; // [2, 2]
        let mut out = vec![0; 12];
        pad(&x, &[2, 2], &[(1, 0), (0, 2)], 9, &mut out);
        assert_eq!(out, vec![9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9]);
        let y = [5, 6]; // [2, 1]
        let mut c = vec![0; 6];
        concat(&[&x, &y], &[&[2, 2], &[2, 1]], 1, &mut c);
        assert_eq!(c, vec![1, 2, 5, 3, 4, 6]);
    }

    #[test]
    fn strided_slice_rules() {
        let x: Vec<i32> = (0..10).collect();
        let o = StridedSlice::default();
        let spec = strided_slice_spec(&[10], &[1], &[-1], &[3], &o).unwrap();
        let mut out = vec![0; spec.out_shape[0]];
        strided_slice(&x, &[10], &spec, &mut out);
        assert_eq!(out, vec![1, 4, 7]);
        let rev =
            strided_slice_spec(&[10], &[0], &[0], &[-2], &StridedSlice { begin_mask: 1, end_mask: 1, ..o.clone() })
                .unwrap();
        let mut out = vec![0; rev.out_shape[0]];
        strided_slice(&x, &[10], &rev, &mut out);
        assert_eq!(out, vec![9, 7, 5, 3, 1]);
        let shrink =
            strided_slice_spec(&[2, 5], &[1, 0], &[2, 5], &[1, 1], &StridedSlice { shrink_axis_mask: 1, ..o.clone() })
                .unwrap();
        assert_eq!(shrink.out_shape, vec![5]);
        assert!(strided_slice_spec(&[4], &[0], &[4], &[0], &o).is_err());
    }
}
