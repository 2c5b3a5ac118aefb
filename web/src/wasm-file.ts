/** Reading a wasm build in Node: from disk for file: URLs, else fetched (http:, https:, data:). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export async function readWasmAt(url: URL): Promise<Uint8Array | ArrayBuffer> {
  if (url.protocol === 'file:') return readFile(fileURLToPath(url));
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load the engine from ${url} (HTTP ${r.status})`);
  return r.arrayBuffer();
}
