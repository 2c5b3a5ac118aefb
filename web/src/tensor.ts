/**
 * Tensors as plain values: a typed array in row-major (C) order and its shape. The API takes them
 * beside `.npy` bytes wherever it takes data, and returns them from `run` when given one.
 */

/** The element types the engine reads: float32, float64, int8, uint8, int32 and int64. */
export type TensorData = Float32Array | Float64Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

/** A dense tensor: `data.length` is the product of `shape` (1 for a scalar, `shape: []`). */
export interface Tensor<D extends TensorData = TensorData> {
  data: D;
  shape: number[];
}

/** The NumPy name of each element type. */
export type DType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int32' | 'int64';

/** Whether `x` looks like a `Tensor` (a typed array and a shape array), not bytes. */
export function isTensor(x: unknown): x is Tensor {
  if (x === null || typeof x !== 'object' || x instanceof ArrayBuffer || ArrayBuffer.isView(x)) return false;
  const t = x as { data?: unknown; shape?: unknown };
  return ArrayBuffer.isView(t.data) && Array.isArray(t.shape);
}

/** The element type of a typed array, or null for one the engine does not read. */
export function dtypeOf(data: unknown): DType | null {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return null;
}
