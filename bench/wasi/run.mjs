// Runs a Go GOOS=wasip1 test binary under V8 through Node.js's WASI
// (make bench, S12): node --no-liftoff bench/wasi/run.mjs file.wasm [args…]
// --no-liftoff makes V8 compile with TurboFan only, as Envoy runs wasm.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env, exit, cwd } from 'node:process';

const [file, ...args] = argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env: { ...env, PWD: cwd() },
  preopens: { '/': '/' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance) ?? 0);
