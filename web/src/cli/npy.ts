/** Subsets of .npy batches for `optimize` (calibration and gradient samples, as the app takes them). */
import { readNpy, writeNpy } from '../npy.js';
import type { Tensor, TensorData } from '../tensor.js';

/** Up to `k` rows of a .npy batch spread evenly over it; the batch itself when it has at most `k` rows or is not a .npy file we read (the engine then says why). */
export function spreadRows(bytes: Uint8Array, k: number): Uint8Array {
  let t: Tensor;
  try {
    t = readNpy(bytes);
  } catch {
    return bytes;
  }
  const rows = t.shape[0] ?? 0;
  if (rows <= k) return bytes;
  const rowBytes = t.data.byteLength / rows;
  const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const picked = new Uint8Array(k * rowBytes);
  for (let i = 0; i < k; i++) {
    const r = Math.floor((i * rows) / k);
    picked.set(src.subarray(r * rowBytes, (r + 1) * rowBytes), i * rowBytes);
  }
  const Typed = t.data.constructor as new (buffer: ArrayBuffer) => TensorData;
  return writeNpy({ data: new Typed(picked.buffer), shape: [k, ...t.shape.slice(1)] });
}
