// A plain webpack 5 configuration: nothing specific to @tinyml/optimizer.
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './src/index.js',
  context: fileURLToPath(new URL('.', import.meta.url)),
  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), clean: true },
  devtool: 'source-map',
  performance: { hints: false },
};
