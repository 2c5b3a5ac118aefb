// The .npy helpers (readNpy/writeNpy): round trips per dtype and shape, agreement with NumPy in both
// directions, and typed errors for hostile headers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OptimizerError, readNpy, writeNpy } from '../dist/node.js';
import { fixture, parseNpy } from './helpers.mjs';

const CASES = [
  ['float32', Float32Array, (i) => i * 0.5 - 3],
  ['int8', Int8Array, (i) => (i % 256) - 128],
  ['uint8', Uint8Array, (i) => (i * 7) % 256],
  ['int32', Int32Array, (i) => i * 100003 - 2 ** 30],
  ['float64', Float64Array, (i) => i / 3],
];
const SHAPES = [[], [0], [1], [5], [2, 3], [2, 0, 4], [2, 3, 4], [1, 2, 1, 3, 1]];

const tensorOf = (Type, f, shape) => ({ data: Type.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)), shape });

test('writeNpy → readNpy keeps dtype, shape and every value', () => {
  for (const [name, Type, f] of CASES) {
    for (const shape of SHAPES) {
      const t = tensorOf(Type, f, shape);
      const bytes = writeNpy(t);
      const headerEnd = 10 + (bytes[8] | (bytes[9] << 8));
      assert.equal(headerEnd % 64, 0, 'the data starts on a 64-byte boundary');
      const back = readNpy(bytes);
      assert.ok(back.data instanceof Type, `${name} ${shape}: ${back.data.constructor.name}`);
      assert.deepEqual(back.shape, shape);
      assert.deepEqual(Array.from(back.data), Array.from(t.data));
    }
  }
  const big = { data: BigInt64Array.from([1n, -2n, 2n ** 40n]), shape: [3] };
  assert.deepEqual(readNpy(writeNpy(big)).data, big.data);
});

test('readNpy reads NumPy files and NumPy reads writeNpy files', () => {
  const x = readNpy(fixture('cnn/inputs.npy'));
  const want = parseNpy(fixture('cnn/inputs.npy'));
  assert.deepEqual(x.shape, [8, 16, 16, 1]);
  assert.deepEqual(x.data, want.data);
  const y = readNpy(fixture('data/patterns_test_y.npy'));
  assert.ok(y.data instanceof Int32Array);
  assert.deepEqual(y.shape, [1000]);
  // A view into a larger buffer at an odd offset is read too (the data is copied, aligned).
  const raw = fixture('mlp/inputs.npy');
  const shifted = new Uint8Array(raw.length + 3);
  shifted.set(raw, 3);
  assert.deepEqual(readNpy(shifted.subarray(3)).data, readNpy(raw).data);

  const dir = mkdtempSync(join(tmpdir(), 'tinyml-npy-'));
  const files = [];
  for (const [name, Type, f] of CASES) {
    for (const [i, shape] of [[], [4], [2, 3]].entries()) {
      const path = join(dir, `${name}_${i}.npy`);
      writeFileSync(path, writeNpy(tensorOf(Type, f, shape)));
      files.push([path, name, shape, Array.from(tensorOf(Type, f, shape).data)]);
    }
  }
  const script = `import json, sys, numpy as np
out = []
for p in json.load(sys.stdin):
    a = np.load(p)
    out.append([str(a.dtype), list(a.shape), a.ravel().tolist()])
print(json.dumps(out))`;
  const r = spawnSync('python3', ['-c', script], { input: JSON.stringify(files.map((f) => f[0])), encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 with numpy is needed (tests/requirements.txt): ${r.stderr}`);
  const got = JSON.parse(r.stdout);
  files.forEach(([, name, shape, values], i) => {
    assert.deepEqual(got[i], [name, shape, values], `${name} ${JSON.stringify(shape)}`);
  });
  // And a NumPy-written scalar and a version 2.0 file.
  const scalar = join(dir, 'scalar.npy');
  const v2 = join(dir, 'v2.npy');
  const w = spawnSync(
    'python3',
    ['-c', `import numpy as np; np.save(${JSON.stringify(scalar)}, np.int8(-7)); np.lib.format.write_array(open(${JSON.stringify(v2)}, 'wb'), np.arange(6, dtype='<i4').reshape(2, 3), version=(2, 0))`],
    { encoding: 'utf8' },
  );
  assert.equal(w.status, 0, w.stderr);
  const s = readNpy(readFileSync(scalar));
  assert.deepEqual([s.shape, Array.from(s.data), s.data.constructor.name], [[], [-7], 'Int8Array']);
  const t2 = readNpy(readFileSync(v2));
  assert.deepEqual([t2.shape, Array.from(t2.data)], [[2, 3], [0, 1, 2, 3, 4, 5]]);
});

/** A .npy file with this header text and `body` bytes of data. */
function npy(header, body = 0, version = 1) {
  const h = new TextEncoder().encode(header);
  const pre = version === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + body);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const v = new DataView(out.buffer);
  if (version === 1) v.setUint16(8, h.length, true);
  else v.setUint32(8, h.length, true);
  out.set(h, pre);
  return out;
}
const dict = (descr, shape, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

test('hostile .npy headers are invalid_npy errors that say what is wrong', () => {
  const good = writeNpy({ data: new Float32Array(6), shape: [2, 3] });
  const cases = [
    [new Uint8Array(0), /magic/],
    [new TextEncoder().encode('PK\x03\x04 not a npy file'), /magic/],
    [npy(dict('<f4', '(2,)'), 8, 9), /version 9/],
    [(() => { const b = npy(dict('<f4', '(2,)'), 8); b[8] = 0xff; b[9] = 0xff; return b; })(), /header claims 65535 bytes/],
    [(() => { const b = npy(dict('<f4', '(2,)'), 8, 2); new DataView(b.buffer).setUint32(8, 0xfffffff0, true); return b; })(), /header claims/],
    [npy(`{'fortran_order': False, 'shape': (2,), }\n`, 8), /no valid 'descr'/],
    [npy(dict('<f2', '(2,)'), 4), /dtype '<f2' are not supported/],
    [npy(dict('>i4', '(2,)'), 8), /dtype '>i4' are not supported/],
    [npy(dict('|O', '(2,)'), 16), /dtype '\|O' are not supported/],
    [npy(dict('<f4', '(2,)', 'True'), 8), /Fortran-ordered/],
    [npy(dict('<f4', '(2, x)'), 8), /not a whole number/],
    [npy(dict('<f4', '(-2,)'), 8), /not a whole number/],
    [npy(dict('<f4', '(1.5,)'), 8), /not a whole number/],
    [npy(dict('<f4', '(99999999999999999999,)'), 8), /too large/],
    [npy(dict('|i1', '(65536, 65536)'), 3), /more elements than the file has data for/],
    [npy(dict('<f8', '(4294967296, 4294967296, 16)'), 0), /more elements/],
    [npy(dict('<f4', `(${Array(65).fill(1).join(', ')})`), 4), /65 dimensions/],
    [npy(dict('<f4', '(3,)'), 8), /more elements|needs 12 bytes/],
    [npy(dict('<f4', '(2,)'), 9), /needs 8 bytes of data, the file has 9/],
    [npy(`{'descr': '<f4', 'fortran_order': False}\n`, 8), /no valid 'shape'/],
  ];
  for (const [bytes, message] of cases) {
    assert.throws(() => readNpy(bytes), (e) => {
      assert.ok(e instanceof OptimizerError, `not an OptimizerError: ${e}`);
      assert.equal(e.code, 'invalid_npy');
      assert.match(e.message, message);
      return true;
    });
  }
  // Every truncation of a good file is an invalid_npy error too, never another exception.
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => readNpy(good.subarray(0, n)), (e) => e instanceof OptimizerError && e.code === 'invalid_npy', `prefix of ${n} bytes`);
  }
});

test('writeNpy refuses tensors it cannot write, with invalid_argument', () => {
  const bad = [
    [{ data: new Float32Array(5), shape: [2, 3] }, /has 6 elements but its data has 5/],
    [{ data: new Float32Array(1), shape: [-1] }, /whole numbers >= 0/],
    [{ data: new Float32Array(1), shape: [0.5] }, /whole numbers >= 0/],
    [{ data: new Uint16Array(2), shape: [2] }, /must be a Float32Array/],
    [{ data: [1, 2], shape: [2] }, /must be a Float32Array/],
  ];
  for (const [t, message] of bad) {
    assert.throws(() => writeNpy(t), (e) => e instanceof OptimizerError && e.code === 'invalid_argument' && message.test(e.message));
  }
});
