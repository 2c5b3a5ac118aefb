/**
 * NumPy `.npy` files (format versions 1.0 to 3.0) to and from tensors, in plain TypeScript: no
 * engine needed. Every header field is treated as hostile: a malformed, truncated or oversized file
 * is an `OptimizerError` with code `invalid_npy`, never an exception of another kind.
 */
import { dtypeOf, type DType, type Tensor, type TensorData } from './tensor.js';
import { OptimizerError } from './types.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** At most this many dimensions, as NumPy allows. */
const MAX_DIMS = 64;

interface Kind {
  dtype: DType;
  size: number;
  make(buffer: ArrayBuffer): TensorData;
}

/** NumPy descr (little-endian or byte-order free) → element type. */
const KINDS: Record<string, Kind> = {
  '<f4': { dtype: 'float32', size: 4, make: (b) => new Float32Array(b) },
  '<f8': { dtype: 'float64', size: 8, make: (b) => new Float64Array(b) },
  '|i1': { dtype: 'int8', size: 1, make: (b) => new Int8Array(b) },
  '|u1': { dtype: 'uint8', size: 1, make: (b) => new Uint8Array(b) },
  '<i4': { dtype: 'int32', size: 4, make: (b) => new Int32Array(b) },
  '<i8': { dtype: 'int64', size: 8, make: (b) => new BigInt64Array(b) },
};
const DESCR: Record<DType, string> = Object.fromEntries(Object.entries(KINDS).map(([d, k]) => [k.dtype, d])) as Record<
  DType,
  string
>;
/** Spellings NumPy also writes for the single-byte and native-order types. */
const ALIASES: Record<string, string> = { '<i1': '|i1', '<u1': '|u1', i1: '|i1', u1: '|u1', '=f4': '<f4', '=f8': '<f8', '=i4': '<i4', '=i8': '<i8' };

function bad(message: string): OptimizerError {
  return new OptimizerError('invalid_npy', `invalid .npy file: ${message}`);
}

/** The header's text and where the data starts. */
function headerOf(u8: Uint8Array): { text: string; dataStart: number } {
  if (u8.length < 10 || MAGIC.some((b, i) => u8[i] !== b)) throw bad('it does not start with the .npy magic string');
  const major = u8[6];
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  let start: number;
  let length: number;
  if (major === 1) {
    start = 10;
    length = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (u8.length < 12) throw bad('the header is truncated');
    start = 12;
    length = view.getUint32(8, true);
  } else {
    throw bad(`format version ${major} is not supported (1, 2 or 3)`);
  }
  if (start + length > u8.length) throw bad(`the header claims ${length} bytes but the file has ${u8.length - start} after it`);
  const decoder = new TextDecoder(major === 3 ? 'utf-8' : 'latin1');
  return { text: decoder.decode(u8.subarray(start, start + length)), dataStart: start + length };
}

/** The value text of `key` in the header's dict literal. */
function field(text: string, key: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*('[^']*'|"[^"]*"|True|False|\\([^)]*\\))`).exec(text);
  if (!m) throw bad(`the header has no valid '${key}'`);
  return m[1];
}

function shapeOf(tuple: string): number[] {
  const inner = tuple.slice(1, -1).trim();
  const parts = inner === '' ? [] : inner.split(',').map((s) => s.trim());
  if (parts.length > 0 && parts.at(-1) === '') parts.pop();
  if (parts.length > MAX_DIMS) throw bad(`the shape has ${parts.length} dimensions (at most ${MAX_DIMS})`);
  return parts.map((p) => {
    if (!/^\d+L?$/.test(p)) throw bad(`the shape ${tuple} has a dimension that is not a whole number`);
    const n = Number(p.replace('L', ''));
    if (!Number.isSafeInteger(n)) throw bad(`the dimension ${p} is too large`);
    return n;
  });
}

/** The number of elements of `shape`, or an error when it exceeds `limit`. */
function elementCount(shape: number[], limit: number): number {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > limit) throw bad(`the shape (${shape.join(', ')}) holds more elements than the file has data for`);
  }
  return n;
}

/** Reads a `.npy` file into a tensor (the data is copied, so it is aligned and owned). */
export function readNpy(bytes: ArrayBuffer | Uint8Array): Tensor {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const { text, dataStart } = headerOf(u8);
  const descrText = field(text, 'descr');
  const raw = descrText.slice(1, -1);
  const descr = ALIASES[raw] ?? raw;
  const kind = KINDS[descr];
  if (!kind) throw bad(`arrays of dtype '${raw}' are not supported (float32, float64, int8, uint8, int32, int64; little-endian)`);
  if (field(text, 'fortran_order') !== 'False') throw bad('Fortran-ordered arrays are not supported');
  const shape = shapeOf(field(text, 'shape'));
  const available = u8.length - dataStart;
  const count = elementCount(shape, Math.floor(available / kind.size));
  const byteLength = count * kind.size;
  if (byteLength !== available) throw bad(`the shape (${shape.join(', ')}) needs ${byteLength} bytes of data, the file has ${available}`);
  const body = new Uint8Array(byteLength);
  body.set(u8.subarray(dataStart, dataStart + byteLength));
  return { data: kind.make(body.buffer), shape };
}

/** Checks a tensor given to the API: a supported typed array whose length matches the shape. */
function checkTensor(t: Tensor): DType {
  const dtype = dtypeOf(t.data);
  if (!dtype) throw new OptimizerError('invalid_argument', 'tensor data must be a Float32Array, Float64Array, Int8Array, Uint8Array, Int32Array or BigInt64Array');
  if (!Array.isArray(t.shape) || t.shape.length > MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new OptimizerError('invalid_argument', `tensor shape must be at most ${MAX_DIMS} whole numbers >= 0, got [${String(t.shape)}]`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) {
    throw new OptimizerError('invalid_argument', `tensor shape [${t.shape.join(', ')}] has ${n} elements but its data has ${t.data.length}`);
  }
  return dtype;
}

/** Writes a tensor as a version 1.0 `.npy` file (2.0 if the header needs more than 64 KiB). */
export function writeNpy(t: Tensor): Uint8Array {
  const dtype = checkTensor(t);
  const dims = t.shape.length === 1 ? `${t.shape[0]},` : t.shape.join(', ');
  let dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': (${dims}), }`;
  const v2 = dict.length + 11 > 0xffff;
  const prefix = v2 ? 12 : 10;
  // Pad with spaces so the data starts on a 64-byte boundary, ending the header with a newline.
  dict += ' '.repeat((64 - ((prefix + dict.length + 1) % 64)) % 64) + '\n';
  const body = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const out = new Uint8Array(prefix + dict.length + body.length);
  out.set(MAGIC);
  out[6] = v2 ? 2 : 1;
  const view = new DataView(out.buffer);
  if (v2) view.setUint32(8, dict.length, true);
  else view.setUint16(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out.set(body, prefix + dict.length);
  return out;
}
