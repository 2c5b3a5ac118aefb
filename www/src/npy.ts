/** Reads the float32 .npy files the engine returns (little-endian, C order). */
export function parseNpyF32(bytes: Uint8Array): { shape: number[]; data: Float32Array } {
  const headerLen = bytes[8] | (bytes[9] << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  if (descr !== '<f4') throw new Error(`expected a float32 .npy, got ${descr}`);
  const dims = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '';
  const shape = dims.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = bytes.slice(10 + headerLen);
  return { shape, data: new Float32Array(body.buffer, 0, body.byteLength / 4) };
}
