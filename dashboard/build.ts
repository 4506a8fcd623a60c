/**
 * Builds the dashboard into dashboard/dist (git-ignored): one JS bundle and one CSS file with
 * uPlot inside, plus index.html. Run by tools/setup.sh, so `npm start` and `npm test` serve a
 * fresh build; `--watch` rebuilds on change while working on the page.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');

const options: esbuild.BuildOptions = {
  entryPoints: { app: path.join(here, 'src', 'main.ts') },
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  outdir: dist,
  logLevel: 'warning',
};

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await copyFile(path.join(here, 'index.html'), path.join(dist, 'index.html'));
if (process.argv.includes('--watch')) {
  await (await esbuild.context(options)).watch();
} else {
  await esbuild.build(options);
  console.log(`[setup] dashboard built into ${path.relative(process.cwd(), dist) || dist}`);
}
