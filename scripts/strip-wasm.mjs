#!/usr/bin/env node
// Removes the custom sections (function names, producers, target features) from a .wasm file in
// place: browsers never read them, and the names alone are about a tenth of the download.
// Usage: node scripts/strip-wasm.mjs FILE.wasm
import { readFileSync, writeFileSync } from 'node:fs';
import { wasmSections } from './wasm-sections.mjs';

const file = process.argv[2];
const b = readFileSync(file);
if (b.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file} is not a wasm module`);
let sections;
try {
  sections = wasmSections(b);
} catch (e) {
  throw new Error(`${file}: ${e.message}`);
}
const kept = [b.subarray(0, 8), ...sections.filter((s) => s.id !== 0).map((s) => b.subarray(s.start, s.end))];
writeFileSync(file, Buffer.concat(kept));
