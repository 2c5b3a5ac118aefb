#!/usr/bin/env node
// Removes the custom sections (function names, producers, target features) from a .wasm file in
// place: browsers never read them, and the names alone are about a tenth of the download.
// Usage: node scripts/strip-wasm.mjs FILE.wasm
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.argv[2];
const b = readFileSync(file);
if (b.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file} is not a wasm module`);
const leb = (i) => {
  let [value, shift] = [0, 0];
  for (;;) {
    const byte = b[i++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, i];
  }
};
const kept = [b.subarray(0, 8)];
for (let i = 8; i < b.length; ) {
  const [size, body] = leb(i + 1);
  if (body + size > b.length) throw new Error(`${file}: section at ${i} runs past the end`);
  if (b[i] !== 0) kept.push(b.subarray(i, body + size));
  i = body + size;
}
writeFileSync(file, Buffer.concat(kept));
