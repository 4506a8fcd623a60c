/**
 * What a saved service's own code can see and keep, through the real pipeline (Temporal, the
 * worker's activities, real processes): every step prints its environment, which must hold the
 * allow-list, the manifest's own variables and its passEnv names, and none of the worker's secrets;
 * the install fills the dependency cache, and staged and archived versions own their node_modules
 * (a real folder, not a link into the cache that later saves could change).
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import type { EventDoc } from '../../core/documents.ts';
import type { EventStore } from '../../core/events.ts';
import { loadManifest } from '../../core/manifest.ts';
import type { Store } from '../../core/mongo.ts';
import { hashTree } from '../../core/tree-hash.ts';
import { VersionRepo } from '../../core/version-repo.ts';
import { launchFor } from '../../runner/launch.ts';
import { signalSave } from '../../watcher/save-signaller.ts';
import type { WorkerHandle } from '../../workers/create-worker.ts';
import { startPipelineParts } from '../support/pipeline-parts.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'envy';
/** Planted in the worker's environment: none of them may reach a step. */
const SECRETS = {
  MCPSHIP_ADMIN_TOKEN: 'planted-admin-token-0123456789abcdef',
  MONGODB_URI: 'mongodb://user:planted-password@db.internal:27017',
  AWS_SECRET_ACCESS_KEY: 'planted-aws-secret',
  GOOGLE_APPLICATION_CREDENTIALS: '/planted/gcp.json',
};
/** Also in the worker's environment: passed because the manifest or the allow-list names them. */
const PASSED = { WEATHER_API_KEY: 'weather-123', LC_TIME: 'C' };
/** What a shell adds by itself around the command. */
const SHELL_ADDS = new Set(['PWD', 'OLDPWD', 'SHLVL', '_']);
const ALLOWED = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'TMPDIR', 'TZ', 'LANG', 'LANGUAGE', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'CI', 'FORCE_COLOR', 'SERVICE_OWN', 'WEATHER_API_KEY']);

const config = testConfig();
const saved: Record<string, string | undefined> = {};
let store: Store;
let events: EventStore;
let worker: WorkerHandle;
let connection: Connection;
let client: Client;

before(async () => {
  for (const [name, value] of Object.entries({ ...SECRETS, ...PASSED })) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  ({ store, events, worker, connection, client } = await startPipelineParts(config));
});

after(async () => {
  await client.workflow.getHandle(`service/${SERVICE}`).terminate('test over').catch(() => {});
  await worker.shutdown();
  await connection.close();
  await store.close();
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

const PRINT_ENV = `console.log('ENV ' + JSON.stringify(process.env));\n`;
/** A stand-in for a package install: offline, and it leaves a package and a .bin link. */
const INSTALL = `${PRINT_ENV}
const fs = require('node:fs');
fs.mkdirSync('node_modules/leftpad', { recursive: true });
fs.writeFileSync('node_modules/leftpad/index.js', "module.exports = 'v1';\\n");
fs.mkdirSync('node_modules/.bin', { recursive: true });
fs.symlinkSync('../leftpad/index.js', 'node_modules/.bin/leftpad');
`;

async function writeService(): Promise<string> {
  const dir = path.join(config.servicesDir, SERVICE);
  await mkdir(dir, { recursive: true });
  const manifest = {
    name: SERVICE,
    version: '1.0.0',
    transport: 'stdio',
    start: { command: 'node', args: ['server.js'], env: { SERVICE_OWN: 'from-manifest' } },
    passEnv: ['WEATHER_API_KEY'],
    install: 'node install.cjs',
    steps: { lint: { run: 'node print-env.cjs' }, test: { run: 'node print-env.cjs' }, build: { run: 'node print-env.cjs' } },
    rollout: { autoDeploy: false },
  };
  await writeFile(path.join(dir, 'mcp.json'), JSON.stringify(manifest, null, 2));
  await writeFile(path.join(dir, 'print-env.cjs'), PRINT_ENV);
  await writeFile(path.join(dir, 'install.cjs'), INSTALL);
  await writeFile(path.join(dir, 'server.js'), '// never started here\n');
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: SERVICE, version: '1.0.0', private: true }));
  await writeFile(path.join(dir, 'package-lock.json'), JSON.stringify({ name: SERVICE, version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: SERVICE, version: '1.0.0' } } }));
  return dir;
}

async function save(): Promise<string> {
  const { hash } = await hashTree(path.join(config.servicesDir, SERVICE));
  await signalSave(client, config, SERVICE, { hash, changedPaths: ['mcp.json'], at: new Date().toISOString() });
  return hash;
}

function outcome(hash: string): Promise<EventDoc> {
  return waitFor(
    `the outcome of ${hash.slice(0, 8)}`,
    async () => (await events.list({ service: SERVICE, limit: 500 })).find((e) => ['STAGED', 'VALIDATION_FAILED'].includes(e.kind) && (e.details as { hash?: string }).hash === hash),
    300_000,
    200,
  );
}

/** The environment a step printed, from its full log. */
async function printedEnv(hash: string, step: string): Promise<Record<string, string>> {
  const done = (await events.list({ service: SERVICE, kind: `${step.toUpperCase()}_COMPLETE`, limit: 500 })).find((e) => (e.details as { hash?: string }).hash === hash);
  assert.ok(done, `${step} completed`);
  const log = await readFile((done.details as { logFile: string }).logFile, 'utf8');
  const line = log.split('\n').find((l) => l.startsWith('ENV '));
  assert.ok(line, `${step} printed its environment:\n${log}`);
  return JSON.parse(line.slice(4));
}

async function isRealFolder(file: string): Promise<boolean> {
  const info = await lstat(file);
  return info.isDirectory() && !info.isSymbolicLink();
}

let firstHash: string;

test('every step gets the allow-list, the manifest env and passEnv, never the worker secrets', async () => {
  await writeService();
  firstHash = await save();
  const staged = await outcome(firstHash);
  assert.equal(staged.kind, 'STAGED', JSON.stringify(staged.details));
  for (const step of ['install', 'lint', 'test', 'build']) {
    const env = await printedEnv(firstHash, step);
    for (const name of Object.keys(SECRETS)) assert.equal(env[name], undefined, `${step} saw ${name}`);
    const leaked = Object.keys(env).filter((name) => !ALLOWED.has(name) && !SHELL_ADDS.has(name) && !/^LC_[A-Z]+$/.test(name));
    assert.deepEqual(leaked, [], `${step} saw variables outside the allow-list`);
    assert.ok(env.PATH && env.HOME, `${step} has PATH and HOME`);
    assert.equal(env.SERVICE_OWN, 'from-manifest');
    assert.equal(env.WEATHER_API_KEY, PASSED.WEATHER_API_KEY, 'passEnv names pass');
    assert.equal(env.LC_TIME, PASSED.LC_TIME, 'locale passes');
    assert.equal(env.CI, 'true');
  }
  // Instances are started from the same allow-list (runner/launch.ts).
  const stagedDir = path.join(config.stateDir, 'staged', SERVICE, '1.0.0');
  const launch = launchFor(await loadManifest(stagedDir), stagedDir, 1234);
  for (const name of Object.keys(SECRETS)) assert.equal(launch.env[name], undefined, `an instance would see ${name}`);
  assert.equal(launch.env.WEATHER_API_KEY, PASSED.WEATHER_API_KEY);
  assert.equal(launch.env.SERVICE_OWN, 'from-manifest');
});

test('staged and archived versions own their node_modules; the cache is whole and not linked', async () => {
  const cacheRoot = path.join(config.stateDir, 'cache', 'node_modules');
  const entries = await readdir(cacheRoot);
  assert.equal(entries.length, 1, `one cache entry, no temporary leftovers: ${entries.join(', ')}`);
  const cached = path.join(cacheRoot, entries[0]!, 'node_modules');
  assert.equal(await readFile(path.join(cached, 'leftpad', 'index.js'), 'utf8'), "module.exports = 'v1';\n");

  const first = path.join(config.stateDir, 'staged', SERVICE, '1.0.0');
  assert.ok(await isRealFolder(path.join(first, 'node_modules')), 'the first version has a folder of its own');

  // A second save with the same lock file: no install, the cached tree is copied in.
  await writeFile(path.join(config.servicesDir, SERVICE, 'extra.js'), 'module.exports = 1;\n');
  const secondHash = await save();
  assert.equal((await outcome(secondHash)).kind, 'STAGED');
  const doc = await store.versions.findOne({ service: SERVICE, hash: secondHash });
  assert.deepEqual(doc?.steps.map((s) => s.step), ['lint', 'test', 'build'], 'the install was reused');
  const second = doc!.stagedDir!;
  assert.ok(await isRealFolder(path.join(second, 'node_modules')), 'the second version has a folder of its own, not a link to the cache');
  assert.equal((await lstat(path.join(second, 'node_modules', '.bin', 'leftpad'))).isSymbolicLink(), true, 'links inside the tree are kept');
  assert.equal((await lstat(path.join(second, 'node_modules', 'leftpad', 'index.js'))).mode & 0o222, 0, 'and read-only');

  // Whatever happens to the cache later, the versions keep what they were validated with.
  await chmod(path.join(cached, 'leftpad', 'index.js'), 0o644);
  await writeFile(path.join(cached, 'leftpad', 'index.js'), "module.exports = 'changed';\n");
  for (const dir of [first, second]) assert.equal(await readFile(path.join(dir, 'node_modules', 'leftpad', 'index.js'), 'utf8'), "module.exports = 'v1';\n");

  const archived = await new VersionRepo(config, store, events).archive(SERVICE, '1.0.0', 'test');
  assert.ok(await isRealFolder(path.join(archived.archiveDir!, 'node_modules')), 'the archive owns its node_modules too');
  assert.equal(await readFile(path.join(archived.archiveDir!, 'node_modules', 'leftpad', 'index.js'), 'utf8'), "module.exports = 'v1';\n");
});
