// Test helpers: fixture paths and a minimal .npy reader for float32/int8 arrays.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const fixture = (p) => readFileSync(new URL(`../../tests/fixtures/${p}`, import.meta.url));
export const cliPath = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export function parseNpy(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const headerLen = u8[8] | (u8[9] << 8);
  const header = new TextDecoder().decode(u8.subarray(10, 10 + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = Uint8Array.prototype.slice.call(u8, 10 + headerLen); // a copy (Buffer#slice would share)
  const data = descr === '<f4' ? new Float32Array(body.buffer) : descr === '|i1' ? new Int8Array(body.buffer) : null;
  if (!data) throw new Error(`unsupported dtype ${descr} in test helper`);
  return { shape, descr, data };
}

export function maxAbsDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export { leb128, wasmSections } from '../../scripts/wasm-sections.mjs';
