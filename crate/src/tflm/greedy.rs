//! TensorFlow Lite Micro's `GreedyMemoryPlanner`, reproduced placement for placement.
//!
//! Buffers are placed largest first. TFLM fills its sort array from the back and sorts it with a
//! stable descending bubble sort, so buffers of equal size are placed in reverse order of their
//! index. Each buffer goes at the lowest offset where it fits between the buffers already placed
//! that are alive at the same time (lifetimes are inclusive operator-step ranges), walking them in
//! offset order; a buffer placed at an offset some others already share goes after them in that
//! order.

/// One buffer to place: its size (already aligned) and the first and last step it is alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub size: u64,
    pub first: i64,
    pub last: i64,
}

fn overlaps(a: &Request, b: &Request) -> bool {
    !(a.first > b.last || b.first > a.last)
}

/// The offset of every request, in request order.
pub fn place(requests: &[Request]) -> Vec<u64> {
    let n = requests.len();
    let mut order: Vec<usize> = (0..n).rev().collect();
    // Stable sort, largest first: equal sizes keep the reversed index order.
    order.sort_by(|&a, &b| requests[b].size.cmp(&requests[a].size));
    let mut offsets = vec![0u64; n];
    // Placed buffers sorted by offset (ties: in placement order).
    let mut by_offset: Vec<usize> = Vec::with_capacity(n);
    for &id in &order {
        let want = &requests[id];
        let mut candidate = 0u64;
        for &other in &by_offset {
            let r = &requests[other];
            if !overlaps(want, r) {
                continue;
            }
            if offsets[other] >= candidate && offsets[other] - candidate >= want.size {
                break;
            }
            candidate = candidate.max(offsets[other].saturating_add(r.size));
        }
        offsets[id] = candidate;
        let at = by_offset.partition_point(|&p| offsets[p] <= candidate);
        by_offset.insert(at, id);
    }
    offsets
}

/// The arena head the plan needs: the highest end of any placed buffer.
pub fn plan_size(requests: &[Request], offsets: &[u64]) -> u64 {
    requests.iter().zip(offsets).map(|(r, &o)| o.saturating_add(r.size)).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn req(size: u64, first: i64, last: i64) -> Request {
        Request { size, first, last }
    }

    /// No two buffers alive at the same step may share bytes.
    fn assert_disjoint(rs: &[Request], offs: &[u64]) {
        for i in 0..rs.len() {
            for j in i + 1..rs.len() {
                if overlaps(&rs[i], &rs[j]) {
                    let (a0, a1) = (offs[i], offs[i] + rs[i].size);
                    let (b0, b1) = (offs[j], offs[j] + rs[j].size);
                    assert!(a1 <= b0 || b1 <= a0, "buffers {i} and {j} overlap: {offs:?}");
                }
            }
        }
    }

    #[test]
    fn chain_reuses_memory_of_dead_tensors() {
        // A chain x0 -> x1 -> x2 -> x3: only neighbours are alive together.
        let rs = [req(1024, 0, 1), req(512, 1, 2), req(1024, 2, 3), req(64, 3, 3)];
        let offs = place(&rs);
        assert_disjoint(&rs, &offs);
        // The two 1024-byte tensors never meet, so both sit at 0.
        assert_eq!(offs[0], 0);
        assert_eq!(offs[2], 0);
        assert_eq!(plan_size(&rs, &offs), 1024 + 512);
    }

    #[test]
    fn equal_sizes_are_placed_in_reverse_index_order() {
        // All alive together: the last-indexed buffer is placed first, at offset 0.
        let rs = [req(32, 0, 5), req(32, 0, 5), req(32, 0, 5)];
        assert_eq!(place(&rs), vec![64, 32, 0]);
    }

    #[test]
    fn reuses_the_space_of_a_buffer_that_died() {
        // B lives only at the start; C and D come later and take its place above A.
        let rs = [req(300, 0, 9), req(200, 0, 2), req(100, 5, 9), req(50, 5, 9)];
        let offs = place(&rs);
        assert_eq!(offs, vec![0, 300, 300, 400]);
        assert_eq!(plan_size(&rs, &offs), 500);
    }

    #[test]
    fn random_plans_never_overlap() {
        let mut x: u64 = 7;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..50 {
            let rs: Vec<Request> = (0..40)
                .map(|_| {
                    let first = (next() % 30) as i64;
                    req(16 * (1 + next() % 64), first, first + (next() % 6) as i64)
                })
                .collect();
            let offs = place(&rs);
            assert_disjoint(&rs, &offs);
            let total: u64 = rs.iter().map(|r| r.size).sum();
            assert!(plan_size(&rs, &offs) <= total);
        }
    }
}
