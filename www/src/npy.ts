/** .npy files in the page: read headers, build float32 batches, take subsets of rows. */

export interface NpyView {
  descr: string;
  shape: number[];
  /** Offset of the data. */
  offset: number;
  bytes: Uint8Array;
}

const SIZES: Record<string, number> = { '<f4': 4, '<f8': 8, '|i1': 1, '|u1': 1, '<i4': 4, '<i8': 8, '<u4': 4, '<i2': 2, '<u2': 2 };

/** Parses the header of a version 1–3 .npy file; throws a readable error for anything else. */
export function readNpy(bytes: Uint8Array, what = 'file'): NpyView {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new Error(`${what} is not a .npy file`);
  const major = bytes[6];
  const headerLen = major === 1 ? bytes[8] | (bytes[9] << 8) : bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) | (bytes[11] << 24);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.length) throw new Error(`${what}: the .npy header is truncated`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? '';
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${what}: Fortran-order .npy files are not supported`);
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = dims.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const size = SIZES[descr.replace('=', '<')];
  if (!size) throw new Error(`${what}: unsupported .npy type ${descr}`);
  const offset = start + headerLen;
  const need = shape.reduce((a, b) => a * b, 1) * size;
  if (bytes.length - offset < need) throw new Error(`${what}: ${bytes.length - offset} data bytes, shape [${shape.join(', ')}] needs ${need}`);
  return { descr, shape, offset, bytes };
}

function header(descr: string, shape: number[]): Uint8Array {
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = (64 - ((10 + h.length + 1) % 64)) % 64;
  h += ' '.repeat(pad) + '\n';
  const out = new Uint8Array(10 + h.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
  out.set(new TextEncoder().encode(h), 10);
  return out;
}

/** A float32 .npy file. */
export function npyF32(shape: number[], data: Float32Array): Uint8Array {
  const h = header('<f4', shape);
  const out = new Uint8Array(h.length + data.byteLength);
  out.set(h);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h.length);
  return out;
}

/** An int32 .npy file of class indices. */
export function npyI32(values: number[]): Uint8Array {
  const h = header('<i4', [values.length]);
  const out = new Uint8Array(h.length + values.length * 4);
  out.set(h);
  const dv = new DataView(out.buffer, h.length);
  values.forEach((v, i) => dv.setInt32(i * 4, v, true));
  return out;
}

/** Rows `rows` (indices along the first axis) of a .npy file, as a new .npy of the same type. */
export function takeRows(v: NpyView, rows: number[]): Uint8Array {
  const size = SIZES[v.descr.replace('=', '<')];
  const row = (v.shape.slice(1).reduce((a, b) => a * b, 1) || 1) * size;
  const h = header(v.descr, [rows.length, ...v.shape.slice(1)]);
  const out = new Uint8Array(h.length + rows.length * row);
  out.set(h);
  rows.forEach((r, i) => out.set(v.bytes.subarray(v.offset + r * row, v.offset + (r + 1) * row), h.length + i * row));
  return out;
}

/** Up to `k` row indices spread evenly over `n` rows. */
export function spread(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
}

/** Reads the float32 .npy files the engine returns (little-endian, C order). */
export function parseNpyF32(bytes: Uint8Array): { shape: number[]; data: Float32Array } {
  const v = readNpy(bytes, 'output');
  if (v.descr !== '<f4') throw new Error(`expected a float32 .npy, got ${v.descr}`);
  const body = bytes.slice(v.offset);
  return { shape: v.shape, data: new Float32Array(body.buffer, 0, body.byteLength / 4) };
}
