// Download size of the wasm builds: the full engine (web/wasm/{simd,relaxed}) and the
// inference-only core (web/wasm/core/{simd,relaxed}, issue 11's ≤ 300 KB gzipped). Each stays under
// its gzipped budget and carries no custom sections (function names, producers), so a size
// regression — a new dependency, a format machinery pulled back in, a build step lost, optimizer
// code reachable from the inference API — fails here, not later in someone's download. Raise a
// budget only on purpose, with the reason in the commit.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { root } from './helpers.mjs';

// Bytes gzipped by Node's zlib at level 9 (about 1% above `gzip -9`, which build-wasm.sh prints); a
// little above what scripts/build-wasm.sh produces today. The core stays under issue 11's 300 KB.
const budgets = { simd: 633_000, relaxed: 635_000, 'core/simd': 297_000, 'core/relaxed': 298_000 };

/** Ids and names of a module's custom sections (id 0). */
function customSections(bytes) {
  const leb = (i) => {
    let [value, shift] = [0, 0];
    for (;;) {
      const byte = bytes[i++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return [value, i];
    }
  };
  const names = [];
  for (let i = 8; i < bytes.length; ) {
    const [size, body] = leb(i + 1);
    if (bytes[i] === 0) {
      const [len, at] = leb(body);
      names.push(new TextDecoder().decode(bytes.subarray(at, at + len)));
    }
    i = body + size;
  }
  return names;
}

for (const [flavor, budget] of Object.entries(budgets)) {
  // (The inference-only core is built only by `scripts/build-wasm.sh --core`: see core.test.mjs.)
  const skip = flavor.startsWith('core/') && !existsSync(join(root, `web/wasm/${flavor}`)) && 'not built (scripts/build-wasm.sh --core)';
  test(`${flavor} build: gzipped size within ${budget} bytes, no custom sections`, { skip }, () => {
    const bytes = readFileSync(join(root, `web/wasm/${flavor}/tinyml_optimizer_bg.wasm`));
    const gz = gzipSync(bytes, { level: 9 }).length;
    assert.ok(gz <= budget, `${flavor}: ${gz} bytes gzipped (${bytes.length} raw) is over the ${budget}-byte budget`);
    assert.deepEqual(customSections(bytes), [], `${flavor}: custom sections left in the build`);
  });
}
