/** Fetching a wasm build over HTTP(S) (browsers, and Node for non-file URLs). */
export async function fetchWasm(url: URL): Promise<ArrayBuffer> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not load the engine from ${url} (HTTP ${r.status})`);
  return r.arrayBuffer();
}
