// The web app in a real browser: the sample flow, a corrupt file's message, and no network traffic
// beyond the app itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { outDir, root, startApp } from './harness.mjs';

let app;
before(async () => {
  app = await startApp();
  await app.page.goto(app.url);
});
after(async () => app?.close());

test('the sample model loads and shows its layers', async () => {
  const { page } = app;
  await page.getByRole('button', { name: 'Try the sample model' }).click();
  await page.locator('#layers tbody tr').first().waitFor();
  assert.equal(await page.locator('#layers tbody tr').count(), 6);
  assert.match(await page.locator('#model-ops').innerText(), /CONV_2D ×2/);
  assert.match(await page.locator('#model-cards').innerText(), /37,024/);
  assert.match(await page.locator('#engine-info').innerText(), /WebAssembly (relaxed-simd|simd128)/);
});

test('the sample images run in the browser', async () => {
  const { page } = app;
  await page.getByRole('button', { name: 'Run on the sample images' }).click();
  await page.locator('#run-results tbody tr').first().waitFor();
  assert.equal(await page.locator('#run-results tbody tr').count(), 8);
  assert.match(await page.locator('#run-status').innerText(), /8 samples in/);
  await page.screenshot({ path: `${outDir}app-sample.png`, fullPage: true });
});

test('a corrupt file shows a readable error, not a blank page', async () => {
  const { page } = app;
  await page.locator('#model-file').setInputFiles({ name: 'broken.tflite', mimeType: 'application/octet-stream', buffer: Buffer.from('this is not a model at all') });
  const err = page.locator('#error');
  await err.waitFor({ state: 'visible' });
  assert.match(await err.innerText(), /invalid model file: missing the TFLite identifier/);
  assert.equal(await page.locator('h1').innerText(), 'tinyml-optimizer');
});

test('no request leaves the local server', async () => {
  const origin = new URL(app.url).origin;
  const foreign = app.requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, []);
  assert.ok(app.requests.some((u) => u.endsWith('.wasm')), 'the engine was fetched from the app');
  assert.deepEqual(app.consoleErrors, []);
});
