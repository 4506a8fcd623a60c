/**
 * The dependency cache is complete or absent: a fill that is cancelled, or fails half-way through
 * the copy, publishes nothing and leaves no temporary folder; a snapshot gets a copy, never a link.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { fillModuleCache, moduleCacheDir, restoreModules } from '../../activities/module-cache.ts';

let root: string;
let stateDir: string;
let snapshot: string;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'mcpship-module-cache-'));
  stateDir = path.join(root, 'state');
  snapshot = path.join(root, 'snapshot');
  await mkdir(path.join(snapshot, 'node_modules', 'pkg'), { recursive: true });
  await writeFile(path.join(snapshot, 'package-lock.json'), '{"lockfileVersion":3}');
  for (let i = 0; i < 50; i++) await writeFile(path.join(snapshot, 'node_modules', 'pkg', `f${i}.js`), `module.exports = ${i};\n`);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const entries = async () => readdir(path.join(stateDir, 'cache', 'node_modules')).catch(() => []);

test('no lock file, no cache entry', async () => {
  const bare = await mkdtemp(path.join(root, 'bare-'));
  assert.equal(await moduleCacheDir(stateDir, bare), undefined);
});

test('a cancelled fill publishes nothing and leaves nothing behind', async () => {
  const cacheDir = (await moduleCacheDir(stateDir, snapshot))!;
  assert.equal(await fillModuleCache(cacheDir, snapshot, () => true), 'cancelled');
  assert.deepEqual(await entries(), []);
});

test('a fill that fails mid-copy publishes nothing and leaves nothing behind', async () => {
  const cacheDir = (await moduleCacheDir(stateDir, snapshot))!;
  // A FIFO cannot be copied: the copy fails after the files before it were written.
  const fifo = path.join(snapshot, 'node_modules', 'pkg', 'zz-fifo');
  await execa('mkfifo', [fifo]);
  try {
    await assert.rejects(fillModuleCache(cacheDir, snapshot), /FIFO|pipe/i);
  } finally {
    await rm(fifo);
  }
  assert.deepEqual(await entries(), []);
});

test('a complete fill is published once; a restore is a copy, not a link', async () => {
  const cacheDir = (await moduleCacheDir(stateDir, snapshot))!;
  assert.equal(await fillModuleCache(cacheDir, snapshot), 'filled');
  assert.equal(await fillModuleCache(cacheDir, snapshot), 'present');
  assert.deepEqual(await entries(), [path.basename(cacheDir)]);
  const next = await mkdtemp(path.join(root, 'next-'));
  assert.equal(await restoreModules(cacheDir, next), true);
  const info = await lstat(path.join(next, 'node_modules'));
  assert.ok(info.isDirectory() && !info.isSymbolicLink());
  assert.equal(await readFile(path.join(next, 'node_modules', 'pkg', 'f7.js'), 'utf8'), 'module.exports = 7;\n');
});
