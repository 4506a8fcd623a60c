/**
 * Symlinks out of a service folder (bad-input suite): a link to a file or folder outside
 * services/<name>/ is never part of the service. The snapshot copies no byte from behind it, the
 * content hash ignores it, and a change behind it is not a save of the service.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { snapshotActivities } from '../../activities/snapshot.ts';
import { loadConfig } from '../../core/config.ts';
import { setTreeWritable } from '../../core/read-only.ts';
import { hashTree } from '../../core/tree-hash.ts';
import { ServiceWatcher, type ServiceChange } from '../../watcher/service-watcher.ts';

const SECRET = `secret-${process.pid}`;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) {
    await setTreeWritable(d, true).catch(() => {});
    await rm(d, { recursive: true, force: true });
  }
});

/** A services root with service `linky`, whose folder links to a file and a folder outside it, and up to the root. */
async function layout() {
  const base = await mkdtemp(path.join(os.tmpdir(), 'mcpship-symlinks-'));
  dirs.push(base);
  const outside = path.join(base, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret.txt'), SECRET);
  const servicesDir = path.join(base, 'services');
  const service = path.join(servicesDir, 'linky');
  await mkdir(path.join(service, 'src'), { recursive: true });
  const manifest = { name: 'linky', version: '1.0.0', transport: 'stdio', start: { command: 'node', args: ['src/index.js'] }, steps: { lint: { run: 'true' }, test: { run: 'true' }, build: { run: 'true' } } };
  await writeFile(path.join(service, 'mcp.json'), JSON.stringify(manifest));
  await writeFile(path.join(service, 'src', 'index.js'), 'export {};\n');
  await symlink(path.join(outside, 'secret.txt'), path.join(service, 'secret.txt'));
  await symlink(outside, path.join(service, 'outside-dir'));
  await symlink('../..', path.join(service, 'src', 'up'));
  await symlink('/etc/passwd', path.join(service, 'passwd'));
  return { base, outside, servicesDir, service };
}

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.map((e) => path.join(e.parentPath, e.name));
}

test('the snapshot copies no link and nothing from behind one', async () => {
  const { base, servicesDir } = await layout();
  const { config } = loadConfig({ MCPSHIP_STATE_DIR: path.join(base, 'state'), MCPSHIP_SERVICES_DIR: servicesDir });
  const snap = await snapshotActivities(config).snapshotService('linky');
  assert.deepEqual(snap.files, ['mcp.json', 'src/index.js']);
  for (const file of await allFiles(snap.dir)) {
    const text = await readFile(file, 'utf8').catch(() => '');
    assert.ok(!text.includes(SECRET) && !text.includes('root:'), `${file} holds outside content`);
  }
  assert.deepEqual((await readdir(snap.dir)).sort(), ['mcp.json', 'src']);
});

test('a change behind a link is not a save of the service', async () => {
  const { outside, servicesDir, service } = await layout();
  const changes: ServiceChange[] = [];
  const watcher = new ServiceWatcher({ root: servicesDir, debounceMs: 50, log: pino({ level: 'silent' }), onChange: (c) => void changes.push(c) });
  await watcher.ready();
  try {
    assert.equal(changes.length, 1, 'the service is reported once at start');
    assert.deepEqual(changes[0]!.changedPaths, ['mcp.json', 'src/index.js']);
    await writeFile(path.join(outside, 'secret.txt'), `${SECRET} changed`);
    await writeFile(path.join(outside, 'new.txt'), 'new');
    await sleep(2_000);
    assert.equal(changes.length, 1, 'no save was reported for changes behind the links');
    // A real save afterwards proves the watcher was listening the whole time.
    await writeFile(path.join(service, 'src', 'index.js'), 'export const x = 1;\n');
    const deadline = Date.now() + 60_000;
    while (changes.length < 2 && Date.now() < deadline) await sleep(50);
    await sleep(500);
    assert.equal(changes.length, 2, 'the real save is reported, once');
    assert.equal(changes[1]!.hash, (await hashTree(service)).hash);
  } finally {
    await watcher.close();
  }
});
