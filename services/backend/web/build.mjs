// Bundles AutoBot's page script (src/page.js with the OpenTelemetry JS web
// SDK from package-lock.json) into one file the backend compiles in:
//
//   npm ci && node build.mjs            writes dist/page.js (committed)
//   node build.mjs --out /tmp/page.js   writes elsewhere (the test that the
//                                       committed file is what the lockfile builds)
//
// The output depends only on the sources and the locked packages: no
// timestamps, no absolute paths, no source map.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf('--out');
const outfile = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : resolve(here, 'dist/page.js');

await build({
  absWorkingDir: here,
  entryPoints: ['src/page.js'],
  outfile,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  define: { 'process.env.NODE_ENV': '"production"' },
  banner: {
    js: '// AutoBot page script. Built by services/backend/web/build.mjs from src/ and package-lock.json; do not edit.',
  },
  logLevel: 'warning',
});
console.log(`built ${outfile}`);
