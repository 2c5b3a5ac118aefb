/** Reading a wasm build in Node: from disk for file: URLs, else fetched (http:, https:, data:). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { fetchWasm } from './fetch-wasm.js';

export async function readWasmAt(url: URL): Promise<Uint8Array | ArrayBuffer> {
  if (url.protocol === 'file:') return readFile(fileURLToPath(url));
  return fetchWasm(url);
}
