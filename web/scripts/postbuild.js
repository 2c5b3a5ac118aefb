// Makes the CLI executable after tsc (npm also does this on install, but not for local runs).
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/cli.js', import.meta.url), 0o755);
