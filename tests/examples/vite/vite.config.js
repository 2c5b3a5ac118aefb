// Exactly what web/README.md tells Vite users to add: keep the package out of the dev server's
// dependency pre-bundling (which would move its files away from its worker and wasm). Builds need
// nothing more.
import { defineConfig } from 'vite';

export default defineConfig({
  optimizeDeps: { exclude: ['@tinyml/optimizer'] },
});
