import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { descendants, liveProcesses, processesMentioning, type ProcessInfo } from '../support/processes.ts';
import { waitFor } from '../support/wait.ts';

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

async function withTemporal<T>(p: Ports, use: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: `127.0.0.1:${p.MCPSHIP_TEMPORAL_PORT}` });
  try {
    return await use(new Client({ connection }));
  } finally {
    await connection.close();
  }
}

const listed = (procs: ProcessInfo[]) => procs.map((x) => `${x.pid} ${x.args.slice(0, 120)}`);
/** The processes of a snapshot still running (same pid and command line: a pid may be reused). */
const stillAlive = (procs: ProcessInfo[]) => {
  const now = new Map(liveProcesses().map((x) => [x.pid, x.args]));
  return procs.filter((x) => now.get(x.pid) === x.args);
};

/**
 * Signals `up` and resolves with its exit code once the process itself has exited, and its goodbye
 * has been read. Not execa's promise: that also waits for the output pipes to close, which a process
 * left behind holding them would put off forever, hiding the very leftover the test looks for.
 */
async function stop(started: { child: ResultPromise; output: () => string }, signal: NodeJS.Signals): Promise<number | null> {
  const { child } = started;
  child.kill(signal);
  await waitFor(`mcpship up to exit on ${signal}`, () => child.exitCode !== null || child.signalCode !== null, 120_000).catch((err: Error) => {
    throw new Error(`${err.message}; its processes: ${listed(descendants(child.pid!)).join(' | ')}`);
  });
  await waitFor('the goodbye of mcpship up', () => /mcpship stopped|\{"state":"stopped"\}/.test(started.output()), 30_000);
  return child.exitCode;
}

/** Starts `mcpship up` and resolves once it prints that it is up. */
async function up(env: NodeJS.ProcessEnv, json = false): Promise<{ child: ResultPromise; output: () => string }> {
  const child = execa(process.execPath, ['--import', 'tsx', cli, 'up', ...(json ? ['--json'] : [])], { env, reject: false, cwd: repoRoot, all: true, extendEnv: false });
  let output = '';
  child.all!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.all!.on('data', () => output.includes(json ? '{"state":"up"' : 'Ctrl-C stops everything.') && resolve());
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
  // A workflow no worker polls for (its own task queue): it simply stays open in Temporal's store.
  const started = await withTemporal(p, (client) => client.workflow.start('persistCheck', { workflowId: 'persist-check', taskQueue: 'persist-check' }));

  // Everything `up` started, detached ones included, while they run: after the exit none may be left.
  const tree = descendants(first.child.pid!);
  assert.ok(tree.length >= 2, `temporal and ferretdb at least: ${listed(tree)}`);
  assert.equal(await stop(first, 'SIGINT'), 0, first.output());
  assert.deepEqual(listed(stillAlive(tree)), [], 'no process is left behind');

  // The second start says it is up as JSON (--json), with the addresses a script needs.
  const second = await up(env, true);
  const upLine = JSON.parse(second.output().split('\n').find((l) => l.startsWith('{"state":"up"'))!) as { api: string; temporal: { uiUrl: string }; mongo: { uri: string } };
  assert.equal(upLine.api, `http://127.0.0.1:${p.MCPSHIP_API_PORT}`);
  assert.equal(upLine.temporal.uiUrl, `http://127.0.0.1:${p.MCPSHIP_TEMPORAL_UI_PORT}`);
  assert.equal(upLine.mongo.uri, `mongodb://127.0.0.1:${p.MCPSHIP_MONGO_PORT}/`);
  const secondTree = descendants(second.child.pid!);
  const again = new MongoClient(`mongodb://127.0.0.1:${p.MCPSHIP_MONGO_PORT}/`);
  const kept = await again.db('persist').collection('marks').findOne({ mark: 'kept' });
  await again.close();
  const workflow = await withTemporal(p, (client) => client.workflow.getHandle('persist-check').describe());
  assert.equal(await stop(second, 'SIGTERM'), 0, second.output());
  assert.match(second.output(), /^\{"state":"stopped"\}$/m);
  assert.ok(kept, 'the second start sees what MongoDB stored in the first');
  assert.equal(workflow.runId, started.firstExecutionRunId, 'the second start sees the workflow the first one ran');
  assert.equal(workflow.status.name, 'RUNNING');
  assert.deepEqual(listed(stillAlive(secondTree)), []);
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
