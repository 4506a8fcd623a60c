/**
 * The runner against the real stack: pools in MongoDB become real processes of the real sample
 * services (built once into a scratch copy inside the repository, so that they resolve the root
 * node_modules as a staged version does), reached by a real MCP client through the URLs the runner
 * writes to MongoDB. Waits are for conditions, with generous guards; nothing asserts on time.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Filter, ReplaceOptions } from 'mongodb';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa } from 'execa';
import type { Config } from '../../core/config.ts';
import type { InstanceDoc, InstanceState } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { readyInstances, setPool, stopPool } from '../../runner/desired-state.ts';
import { instanceIdOf } from '../../runner/instance.ts';
import { reapLeftovers } from '../../runner/leftovers.ts';
import { nodeIdFor } from '../../runner/node.ts';
import { spawnGroup } from '../../runner/process-group.ts';
import { Runner } from '../../runner/runner.ts';
import { createStdioBridge } from '../../runner/stdio-bridge.ts';
import { waitFor as pollUntil } from '../support/wait.ts';
import { membersOfGroups, processesMentioning } from '../support/processes.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLES = path.join(ROOT, 'examples/services');
const SCRATCH = path.join(ROOT, '.mcpship/tmp-test');
/** Guards against a hang, never timing assertions. */
const GUARD = { timeout: 240_000 };
const WAIT_MS = 90_000;

let workDir = '';
let calculatorDir = '';
let helloDir = '';
let config: Config;
let store: Store;
let events: EventStore;
let runner: Runner;
/** Every runner made here, so that after() stops them all even when a test failed half-way. */
const runners: Runner[] = [];
/** Every instance pid (= process group) the tests saw; none may outlive the runner. */
const groups = new Set<number>();
const log = createLogger('warn', 'runner-test');

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && key !== 'NODE_TEST_CONTEXT') env[key] = value;
  return env;
}

async function buildSample(name: string): Promise<string> {
  const dest = path.join(workDir, name);
  await cp(path.join(SAMPLES, name), dest, { recursive: true, filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)) });
  const result = await execa('npm', ['run', '--silent', 'build'], { cwd: dest, env: childEnv(), extendEnv: false, reject: false, all: true });
  assert.equal(result.exitCode, 0, `${name} build failed:\n${result.all}`);
  return dest;
}

function newRunner(): Runner {
  const created = new Runner({
    config,
    store,
    mongoUri: stackAddresses().mongoUri,
    events,
    log,
    options: { pollMs: 200, probeIntervalMs: 100, killGraceMs: 3_000, backoff: { baseMs: 200, maxMs: 2_000, factor: 2, jitter: 0.2 } },
  });
  runners.push(created);
  return created;
}

/** The shared poll, with this file's guard; any falsy value (a count of 0, a null document) means not yet. */
const waitFor = <T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> => pollUntil(what, async () => (await check()) || undefined, WAIT_MS, 100);

/** Instance ids carry the runner's node: the host name under the test config. */
const id = (service: string, slot: number) => instanceIdOf(service, '1.0.0', nodeIdFor(config), slot);
const instance = (instanceId: string) => store.instances.findOne({ instanceId });

/**
 * Every state the runner writes for one instance, each with whether the gateway's own query
 * (readyInstances) still offers the instance right after that write. The runner chains the writes
 * of an instance, so the next one waits for this look: a state however brief cannot be missed,
 * as it could be by polling.
 */
function watchInstanceWrites(instanceId: string): { seen: { state: InstanceState; routable: boolean }[]; restore(): void } {
  const seen: { state: InstanceState; routable: boolean }[] = [];
  const collection = store.instances;
  const replaceOne = collection.replaceOne;
  collection.replaceOne = (async (filter: Filter<InstanceDoc>, doc: InstanceDoc, options?: ReplaceOptions) => {
    const result = await replaceOne.call(collection, filter, doc, options);
    if (doc.instanceId === instanceId) {
      const routable = (await readyInstances(store, doc.service, doc.version)).some((d) => d.instanceId === instanceId);
      seen.push({ state: doc.state, routable });
    }
    return result;
  }) as typeof collection.replaceOne;
  return { seen, restore: () => void (collection.replaceOne = replaceOne) };
}

async function waitReadyCount(service: string, version: string, count: number): Promise<InstanceDoc[]> {
  return waitFor(`${count} ready ${service}@${version}`, async () => {
    const ready = await readyInstances(store, service, version);
    ready.forEach((doc) => doc.pid && groups.add(doc.pid));
    return ready.length === count ? ready : undefined;
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return (result.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('');
}

async function connect(url: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport; close: () => Promise<void> }> {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'runner-test', version: '0.0.0' });
  await client.connect(transport);
  const close = async () => {
    await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  };
  return { client, transport, close };
}

async function callOnce(url: string, name: string, args: Record<string, unknown>): Promise<string> {
  const { client, close } = await connect(url);
  try {
    return text(await client.callTool({ name, arguments: args }));
  } finally {
    await close();
  }
}

async function eventsOf(instanceId: string, kind?: string) {
  const all = await events.list({ ...(kind ? { kind } : {}), limit: 500 });
  return all.filter((e) => e.details?.instanceId === instanceId);
}

/**
 * Events are appended beside the InstanceDoc writes, not before them, so a test that saw a state
 * waits for the matching event rather than expecting it already there.
 */
async function eventsAfter(instanceId: string, done: (kinds: string[]) => boolean) {
  return waitFor(`events of ${instanceId}`, async () => {
    const list = await eventsOf(instanceId);
    return done(list.map((e) => e.kind)) ? list : undefined;
  });
}
const count = (kinds: string[], kind: string) => kinds.filter((k) => k === kind).length;

before(async () => {
  await mkdir(SCRATCH, { recursive: true });
  workDir = await mkdtemp(path.join(SCRATCH, 'runner-'));
  [calculatorDir, helloDir] = await Promise.all([buildSample('calculator'), buildSample('hello-world')]);
  config = testConfig({ MCPSHIP_DRAIN_MS: '1500' });
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
  events = new EventStore(store);
  runner = newRunner();
  await runner.start();
});

after(async () => {
  for (const r of runners) await r.stop();
  await store?.close();
  const left = [...membersOfGroups(groups), ...processesMentioning(workDir)];
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (config) await rm(config.stateDir, { recursive: true, force: true });
  assert.deepEqual(left, [], 'no instance process outlives the tests');
});

describe('runner', GUARD, () => {
  test('an http pool of two instances becomes ready on two urls, and a real client calls a tool', async () => {
    await setPool(store, { service: 'calculator', version: '1.0.0', dir: calculatorDir, instances: 2 });
    await runner.reconcileNow();
    const ready = await waitReadyCount('calculator', '1.0.0', 2);
    assert.deepEqual(ready.map((d) => d.instanceId), [id('calculator', 0), id('calculator', 1)]);
    assert.equal(new Set(ready.map((d) => d.url)).size, 2, 'two distinct urls');
    for (const doc of ready) {
      assert.match(doc.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      assert.equal(doc.restarts, 0);
      assert.equal(await callOnce(doc.url, 'add', { a: 2, b: 3 }), '5');
    }
    assert.ok((await stat(path.join(config.stateDir, 'logs/instances', `${id('calculator', 0)}.log`))).isFile());
    await eventsAfter(id('calculator', 0), (kinds) => count(kinds, 'INSTANCE_READY') === 1);
  });

  test('a stdio pool is served over Streamable HTTP by the bridge, one stdio server per session', async () => {
    await setPool(store, { service: 'hello-world', version: '1.0.0', dir: helloDir, instances: 1 });
    await runner.reconcileNow();
    const [doc] = await waitReadyCount('hello-world', '1.0.0', 1);
    assert.match(doc!.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const { client, transport, close } = await connect(doc!.url);
    try {
      assert.ok(transport.sessionId, 'the bridge assigned an Mcp-Session-Id');
      assert.deepEqual(client.getServerVersion(), { name: 'hello-world', version: '1.0.0' });
      assert.equal(text(await client.callTool({ name: 'hello', arguments: { name: 'Ada' } })), 'Hello, Ada!');
      // The session's stdio server runs inside the instance's process group, beside the bridge.
      const members = membersOfGroups([doc!.pid!]);
      assert.ok(members.some((m) => m.endsWith('node dist/index.js')), members.join('\n'));
    } finally {
      await close();
    }
  });

  test('a killed instance is restarted with backoff, counted, and serves again', async () => {
    const before = (await instance(id('calculator', 0)))!;
    assert.equal(before.state, 'ready');
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor('calculator-1.0.0-0 ready again', async () => {
      const doc = await instance(id('calculator', 0));
      return doc && doc.state === 'ready' && doc.restarts >= 1 && doc.pid !== before.pid ? doc : undefined;
    });
    groups.add(after.pid!);
    assert.equal(after.lastError, 'killed by SIGKILL');
    assert.equal(await callOnce(after.url, 'multiply', { a: 6, b: 7 }), '42');
    const kinds = (await eventsAfter(id('calculator', 0), (k) => count(k, 'INSTANCE_READY') === 2)).map((e) => e.kind);
    assert.deepEqual(kinds, ['INSTANCE_READY', 'INSTANCE_EXITED', 'INSTANCE_RESTARTED', 'INSTANCE_READY']);
    assert.equal((await instance(id('calculator', 1)))!.restarts, 0, 'the other instance was left alone');
  });

  test('a killed stdio bridge takes its sessions’ stdio servers with it and comes back', async () => {
    const before = (await instance(id('hello-world', 0)))!;
    const session = await connect(before.url);
    const members = membersOfGroups([before.pid!]);
    assert.ok(members.length >= 2, `bridge and its session's server: ${members.join('\n')}`);
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor('hello-world-1.0.0-0 ready again', async () => {
      const doc = await instance(id('hello-world', 0));
      return doc && doc.state === 'ready' && doc.restarts >= 1 ? doc : undefined;
    });
    groups.add(after.pid!);
    await session.client.close().catch(() => {});
    assert.deepEqual(membersOfGroups([before.pid!]), [], 'nothing of the killed instance is left');
    assert.equal(await callOnce(after.url, 'echo', { text: 'again' }), 'again');
  });

  test('lowering the instance count drains and stops the highest slot only', async () => {
    const removed = (await instance(id('calculator', 1)))!;
    await setPool(store, { service: 'calculator', version: '1.0.0', dir: calculatorDir, instances: 1 });
    await runner.reconcileNow();
    await waitFor('calculator-1.0.0-1 stopped', async () => (await instance(id('calculator', 1)))?.state === 'stopped');
    assert.deepEqual(membersOfGroups([removed.pid!]), []);
    const ready = await readyInstances(store, 'calculator', '1.0.0');
    assert.deepEqual(ready.map((d) => d.instanceId), [id('calculator', 0)]);
    const kinds = (await eventsAfter(id('calculator', 1), (k) => k.includes('INSTANCE_STOPPED'))).map((e) => e.kind);
    assert.deepEqual(kinds.slice(-2), ['INSTANCE_DRAINING', 'INSTANCE_STOPPED']);
  });

  test('stopPool drains (the gateway sees draining), then stops, and no process is left', async () => {
    const running = (await instance(id('calculator', 0)))!;
    const writes = watchInstanceWrites(id('calculator', 0));
    try {
      assert.equal(await stopPool(store, 'calculator', '1.0.0'), true);
      await runner.reconcileNow();
      await waitFor('calculator-1.0.0-0 stopped', async () => writes.seen.at(-1)?.state === 'stopped');
    } finally {
      writes.restore();
    }
    assert.deepEqual(writes.seen, [
      { state: 'draining', routable: false },
      { state: 'stopped', routable: false },
    ]);
    const kinds = (await eventsAfter(id('calculator', 0), (k) => k.includes('INSTANCE_STOPPED'))).map((e) => e.kind);
    assert.deepEqual(kinds.slice(-2), ['INSTANCE_DRAINING', 'INSTANCE_STOPPED']);
    assert.deepEqual(await readyInstances(store, 'calculator'), []);
    assert.deepEqual(membersOfGroups([running.pid!]), [], 'no process left');
    assert.equal(await stopPool(store, 'calculator', '1.0.0'), true, 'stopping again is harmless');
    assert.equal(await stopPool(store, 'calculator', '9.9.9'), false, 'an unknown pool is reported, not created');
    assert.equal(await store.pools.countDocuments({ service: 'calculator', version: '9.9.9' }), 0);
  });

  test('a server that cannot start is marked failed and retried with backoff, until stopped', async () => {
    const dir = path.join(workDir, 'crashing');
    await mkdir(dir, { recursive: true });
    const step = { run: 'true' };
    await writeFile(
      path.join(dir, 'mcp.json'),
      JSON.stringify({
        name: 'crashing',
        version: '1.0.0',
        transport: 'http',
        start: { command: 'node', args: ['-e', 'process.exit(3)'] },
        steps: { lint: step, test: step, build: step },
      }),
    );
    await setPool(store, { service: 'crashing', version: '1.0.0', dir, instances: 1 });
    await runner.reconcileNow();
    const failed = await waitFor('two restarts of crashing', async () => {
      const doc = await instance(id('crashing', 0));
      return doc && doc.restarts >= 2 ? doc : undefined;
    });
    assert.match(failed.lastError ?? '', /exited with code 3 before it was ready/);
    const exits = (await eventsAfter(id('crashing', 0), (k) => count(k, 'INSTANCE_EXITED') >= 2)).filter((e) => e.kind === 'INSTANCE_EXITED');
    const delays = exits.map((e) => e.details?.restartInMs as number);
    assert.ok(delays.length >= 2 && delays[1]! > delays[0]!, `backoff grows: ${delays.join(', ')}`);
    await stopPool(store, 'crashing', '1.0.0');
    await runner.reconcileNow();
    await waitFor('crashing stopped', async () => (await instance(id('crashing', 0)))?.state === 'stopped');
  });

  test('the stdio bridge: one child per session, DELETE ends its child, unknown session 404, foreign Host 403', async () => {
    const bridge = await createStdioBridge({ command: 'node', args: ['dist/index.js'], cwd: helloDir, log: () => {} });
    try {
      const a = await connect(bridge.url);
      const b = await connect(bridge.url);
      const sessions = bridge.sessions();
      assert.equal(sessions.length, 2);
      const pidA = sessions.find((s) => s.sessionId === a.transport.sessionId)!.pid!;
      const pidB = sessions.find((s) => s.sessionId === b.transport.sessionId)!.pid!;
      assert.notEqual(pidA, pidB, 'two sessions, two stdio servers');
      assert.ok(alive(pidA) && alive(pidB));
      assert.equal(text(await a.client.callTool({ name: 'hello', arguments: { name: 'A' } })), 'Hello, A!');
      assert.equal(text(await b.client.callTool({ name: 'hello', arguments: { name: 'B' } })), 'Hello, B!');

      const sessionA = a.transport.sessionId!;
      await a.transport.terminateSession();
      await waitFor('session A child gone', async () => !alive(pidA));
      assert.ok(alive(pidB), 'the other session keeps its server');
      assert.equal(bridge.sessions().length, 1);
      const stale = await fetch(bridge.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionA }, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }) });
      assert.equal(stale.status, 404);
      assert.equal(text(await b.client.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here');

      const noSession = await fetch(bridge.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
      assert.equal(noSession.status, 400);
      assert.equal(await rawStatus(bridge.port, 'evil.example'), 403);
      assert.equal(bridge.sessions().length, 1, 'refused requests start no server');
      await a.client.close();
      await b.client.close();
    } finally {
      const pids = bridge.sessions().map((s) => s.pid!);
      await bridge.close();
      for (const pid of pids) await waitFor(`child ${pid} gone after close`, async () => !alive(pid));
    }
  });

  test('Runner.stop() stops every instance it started and leaves no process', async () => {
    await setPool(store, { service: 'calculator', version: '1.0.0', dir: calculatorDir, instances: 2 });
    await runner.reconcileNow();
    await waitReadyCount('calculator', '1.0.0', 2);
    const [hello] = await waitReadyCount('hello-world', '1.0.0', 1);
    const session = await connect(hello!.url);
    await runner.stop();
    await session.client.close().catch(() => {});
    const docs = await store.instances.find({ service: { $in: ['calculator', 'hello-world'] } }).toArray();
    assert.ok(docs.length >= 3);
    for (const d of docs) assert.equal(d.state, 'stopped', `${d.instanceId} is ${d.state}`);
    assert.deepEqual(membersOfGroups(groups), []);
    assert.deepEqual(processesMentioning(workDir), []);
    const stopped = await events.list({ kind: 'INSTANCE_STOPPED', limit: 500 });
    assert.ok(stopped.some((e) => e.details?.reason === 'runner stopping'));
  });

  test('a runner killed outright (SIGKILL) leaves no process: its guardian ends the instances, and the node lease at once', async () => {
    const database = `${config.mongo.database}_killed`;
    const other = await connectStore(stackAddresses().mongoUri, database);
    try {
      await setPool(other, { service: 'calculator', version: '1.0.0', dir: calculatorDir, instances: 1 });
      await setPool(other, { service: 'hello-world', version: '1.0.0', dir: helloDir, instances: 1 });
      const child = execa(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/runner/runner-process.ts'), stackAddresses().mongoUri, database, config.stateDir], {
        cwd: ROOT,
        env: childEnv(),
        extendEnv: false,
        reject: false,
        all: true,
      });
      const ready = await waitFor('both instances of the killed runner ready', async () => {
        assert.equal(child.exitCode, null, 'the runner process is up');
        const docs = await other.instances.find({ state: 'ready' }).toArray();
        return docs.length === 2 ? docs : undefined;
      });
      const pids = ready.map((d) => d.pid!);
      pids.forEach((pid) => groups.add(pid));
      assert.ok(membersOfGroups(pids).length >= 2);
      assert.equal(await other.placements.countDocuments({}), 2);
      child.kill('SIGKILL');
      await child;
      await waitFor('no process of the killed runner’s instances', async () => membersOfGroups(pids).length === 0);
      // Ended (the epoch), not lapsing: live nodes re-place its slots at their next pass.
      await waitFor('the lease ended and the placements released', async () => (await other.nodes.findOne({}))?.leaseUntil.getTime() === 0 && (await other.placements.countDocuments({})) === 0);
    } finally {
      await other.db.dropDatabase().catch(() => {});
      await other.close();
    }
  });

  // Run while no runner is up: reaping is what a runner does before it starts anything.
  test('a runner ends the instances a runner that died left running', async () => {
    const dir = path.join(workDir, 'leftover');
    await mkdir(dir, { recursive: true });
    const proc = spawnGroup({ command: 'node', args: ['-e', 'setInterval(() => {}, 1000)'], cwd: dir, env: { PATH: process.env.PATH ?? '' } }, path.join(workDir, 'leftover.log'));
    groups.add(proc.pid);
    await store.pools.insertOne({ service: 'leftover', version: '1.0.0', dir, instances: 1, desired: 'stopped', updatedAt: new Date() });
    const doc = (id: string, pid: number): InstanceDoc => ({ instanceId: id, service: 'leftover', version: '1.0.0', url: 'http://127.0.0.1:1/mcp', pid, state: 'ready', restarts: 0, updatedAt: new Date() });
    // The second document names a pid that is not an instance in that folder (this test process).
    await store.instances.insertMany([doc(id('leftover', 0), proc.pid), doc(id('leftover', 1), process.pid)]);
    assert.equal(await reapLeftovers(store, nodeIdFor(config), 2_000, log), 1);
    await proc.exited;
    assert.deepEqual(membersOfGroups([proc.pid]), []);
    assert.equal((await instance(id('leftover', 0)))?.state, 'stopped');
    assert.equal((await instance(id('leftover', 1)))?.state, 'stopped');
    await store.pools.deleteOne({ service: 'leftover' });
  });

  test('a removed pool’s stopped instances are removed too', async () => {
    runner = newRunner();
    await runner.start();
    await store.pools.deleteOne({ service: 'crashing', version: '1.0.0' });
    await setPool(store, { service: 'hello-world', version: '1.0.0', dir: helloDir, instances: 1 });
    await runner.reconcileNow();
    const [doc] = await waitReadyCount('hello-world', '1.0.0', 1);
    await store.pools.deleteOne({ service: 'hello-world', version: '1.0.0' });
    await runner.reconcileNow();
    await waitFor('hello-world instance removed', async () => (await instance(id('hello-world', 0))) === null);
    assert.deepEqual(membersOfGroups([doc!.pid!]), []);
    await runner.stop();
  });
});

/** A request with a chosen Host header, which fetch() would not send. */
function rawStatus(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString();
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.write(`POST /mcp HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
  });
}
