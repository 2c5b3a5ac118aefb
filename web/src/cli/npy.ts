/** Subsets of .npy batches for `optimize` (calibration and gradient samples, as the app takes them). */

const ITEM_BYTES: Record<string, number> = { f4: 4, f8: 8, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8 };

interface Layout {
  rows: number;
  rowBytes: number;
  dataStart: number;
  header: string;
}

/** The row layout of a C-order .npy file of versions 1–3, or null when it is not one (the engine then says why). */
function layout(bytes: Uint8Array): Layout | null {
  if (bytes.length < 12 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') return null;
  const v1 = bytes[6] === 1;
  const len = v1 ? bytes[8] | (bytes[9] << 8) : (bytes[8] | (bytes[9] << 8) | (bytes[10] << 16)) + bytes[11] * 2 ** 24;
  const start = v1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + len));
  const item = ITEM_BYTES[/'descr':\s*'[<>|=]?([a-z]\d)'/.exec(header)?.[1] ?? ''];
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!item || dims === undefined || /'fortran_order':\s*True/.test(header)) return null;
  const shape = dims.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.length === 0 || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) return null;
  const rowBytes = shape.slice(1).reduce((a, b) => a * b, 1) * item;
  if (bytes.length < start + len + shape[0] * rowBytes) return null;
  return { rows: shape[0], rowBytes, dataStart: start + len, header };
}

/** A version 1 header for `rows` rows, padded so the data starts at a multiple of 64. */
function headerFor(l: Layout, rows: number): Uint8Array {
  let h = l.header.trimEnd().replace(/'shape':\s*\(\s*\d+/, `'shape': (${rows}`);
  h += ' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + h.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
  out.set(new TextEncoder().encode(h), 10);
  return out;
}

/** Up to `k` rows of a .npy batch spread evenly over it; the batch itself when it has at most `k` rows or is not a .npy file. */
export function spreadRows(bytes: Uint8Array, k: number): Uint8Array {
  const l = layout(bytes);
  if (!l || l.rows <= k) return bytes;
  const head = headerFor(l, k);
  const out = new Uint8Array(head.length + k * l.rowBytes);
  out.set(head);
  for (let i = 0; i < k; i++) {
    const r = Math.floor((i * l.rows) / k);
    const from = l.dataStart + r * l.rowBytes;
    out.set(bytes.subarray(from, from + l.rowBytes), head.length + i * l.rowBytes);
  }
  return out;
}
