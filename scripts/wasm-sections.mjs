// Reading a wasm binary's section layout: used by scripts/strip-wasm.mjs and the package's tests.

/** An unsigned LEB128 number at `bytes[i]`: [value, index after it]. */
export function leb128(bytes, i) {
  let [value, shift] = [0, 0];
  for (;;) {
    const byte = bytes[i++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, i];
  }
}

/** The sections of a wasm binary: `{ id, start, body, end }` (the section's bytes are start..end,
 * its contents body..end). Throws when a section runs past the end of `bytes`. */
export function wasmSections(bytes) {
  const sections = [];
  for (let i = 8; i < bytes.length; ) {
    const [size, body] = leb128(bytes, i + 1);
    if (body + size > bytes.length) throw new Error(`wasm section at byte ${i} runs past the end`);
    sections.push({ id: bytes[i], start: i, body, end: body + size });
    i = body + size;
  }
  return sections;
}
