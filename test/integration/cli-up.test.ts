import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { MongoClient } from 'mongodb';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { processesMentioning } from '../support/processes.ts';

const cli = path.join(repoRoot, 'cli', 'main.ts');

interface Ports {
  MCPSHIP_TEMPORAL_PORT: string;
  MCPSHIP_TEMPORAL_UI_PORT: string;
  MCPSHIP_MONGO_PORT: string;
  MCPSHIP_API_PORT: string;
}

async function ports(): Promise<Ports> {
  return {
    MCPSHIP_TEMPORAL_PORT: String(await freePort()),
    MCPSHIP_TEMPORAL_UI_PORT: String(await freePort()),
    MCPSHIP_MONGO_PORT: String(await freePort()),
    MCPSHIP_API_PORT: String(await freePort()),
  };
}

function baseEnv(stateDir: string, p: Ports): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...p, MCPSHIP_STATE_DIR: stateDir, MCPSHIP_LOG_LEVEL: 'warn' };
  delete env.TEMPORAL_ADDRESS;
  delete env.MONGODB_URI;
  return env;
}

/** Starts `mcpship up` and resolves once it prints that it is up. */
async function up(env: NodeJS.ProcessEnv): Promise<{ child: ResultPromise; output: () => string }> {
  const child = execa(process.execPath, ['--import', 'tsx', cli, 'up'], { env, reject: false, cwd: repoRoot, all: true, extendEnv: false });
  let output = '';
  child.all!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.all!.on('data', () => output.includes('Ctrl-C stops everything.') && resolve());
    void child.then((r) => reject(new Error(`mcpship up exited (${r.exitCode}) before it was up:\n${output}`)));
  });
  return { child, output: () => output };
}

test('`mcpship up` serves Temporal Web UI and the API, stops cleanly on SIGINT, and a second start reuses the data', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-up-'));
  const p = await ports();
  const env = baseEnv(stateDir, p);

  const first = await up(env);
  assert.match(first.output(), new RegExp(`Temporal Web UI  http://127.0.0.1:${p.MCPSHIP_TEMPORAL_UI_PORT}`));
  assert.equal((await fetch(`http://127.0.0.1:${p.MCPSHIP_TEMPORAL_UI_PORT}/`)).status, 200);
  const health = (await (await fetch(`http://127.0.0.1:${p.MCPSHIP_API_PORT}/api/health`)).json()) as { ok: boolean };
  assert.equal(health.ok, true);
  assert.ok(processesMentioning(stateDir).length >= 2, 'temporal and ferretdb run with their data under the state dir');

  const mongo = new MongoClient(`mongodb://127.0.0.1:${p.MCPSHIP_MONGO_PORT}/`);
  await mongo.db('persist').collection('marks').insertOne({ mark: 'kept' });
  await mongo.close();

  first.child.kill('SIGINT');
  const result = await first.child;
  assert.equal(result.exitCode, 0, first.output());
  assert.match(first.output(), /mcpship stopped/);
  assert.deepEqual(processesMentioning(stateDir), [], 'no process is left behind');

  const second = await up(env);
  const again = new MongoClient(`mongodb://127.0.0.1:${p.MCPSHIP_MONGO_PORT}/`);
  const kept = await again.db('persist').collection('marks').findOne({ mark: 'kept' });
  await again.close();
  second.child.kill('SIGTERM');
  assert.equal((await second.child).exitCode, 0);
  assert.ok(kept, 'the second start sees what the first one stored');
  assert.deepEqual(processesMentioning(stateDir), []);
});

test('a port already taken stops the start with a message naming the setting', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-up-'));
  const p = await ports();
  const blocker = net.createServer().listen(Number(p.MCPSHIP_MONGO_PORT), '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  try {
    const result = await execa(process.execPath, ['--import', 'tsx', cli, 'up'], { env: baseEnv(stateDir, p), reject: false, cwd: repoRoot, extendEnv: false });
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, new RegExp(`port ${p.MCPSHIP_MONGO_PORT} .* already in use .*MCPSHIP_MONGO_PORT`));
    assert.deepEqual(processesMentioning(stateDir), []);
  } finally {
    blocker.close();
  }
});

test('an invalid config value stops the start and names the key', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-up-'));
  const env = { ...baseEnv(stateDir, await ports()), MCPSHIP_DEBOUNCE_MS: '-5' };
  const result = await execa(process.execPath, ['--import', 'tsx', cli, 'up'], { env, reject: false, cwd: repoRoot, extendEnv: false });
  assert.equal(result.exitCode, 2);
  assert.match(result.stderr, /watcher\.debounceMs \(from MCPSHIP_DEBOUNCE_MS\): Number must be greater than or equal to 0/);
});

test('`mcpship config` shows each value and where it came from', async () => {
  const env = { ...process.env, MCPSHIP_API_PORT: '4555' };
  const result = await execa(process.execPath, ['--import', 'tsx', cli, 'config'], { env, cwd: repoRoot });
  assert.match(result.stdout, /api\.port\s+4555\s+MCPSHIP_API_PORT/);
  assert.match(result.stdout, /temporal\.uiPort\s+8233\s+default/);
});
