/**
 * Version pinning end to end: the calculator at 2.0.0 (operands x/y, result `value`) runs as a
 * real process behind startApi's gateway, with its transforms/1.0-to-2.0.ts in its staged folder.
 * Real SDK clients built against 1.0.0 (a/b, `result`) ask for 1.0.0 with X-Mcpship-Service-Version
 * and work unchanged: the tool list, calls (JSON and SSE answers) and errors come in 1.0.0's
 * shapes. Capture records the pin, the chain and the trace id, and the round trip of that
 * captured traffic through the chain is exact.
 */
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as StatelessClient, StreamableHTTPClientTransport as StatelessTransport } from '@modelcontextprotocol/client';
import { execa, type ResultPromise } from 'execa';
import { startApi, type ApiHandle } from '../../api/server.ts';
import { PIN_HEADER } from '../../api/gateway/pinning.ts';
import { roundTripCaptured } from '../../compat/captured.ts';
import { loadTransforms } from '../../compat/load.ts';
import type { Config } from '../../core/config.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { setRouting } from '../../core/routing-store.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SERVICE = 'calculator';
const { mongoUri, temporalAddress } = stackAddresses();
const cleanup: (() => Promise<unknown> | unknown)[] = [];
let config: Config;
let store: Store;
let api: ApiHandle;
let stagedDir: string;

after(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function until<T>(what: string, fn: () => Promise<T | undefined>, tries = 2_400): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** The calculator folder after the developer's 2.0.0 edit (examples/upgrades/calculator-2.0.0 over it). */
async function calculator2(dir: string): Promise<void> {
  await cp(path.join(ROOT, 'examples/services/calculator'), dir, { recursive: true });
  await cp(path.join(ROOT, 'examples/upgrades/calculator-2.0.0'), dir, { recursive: true });
}

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()) });
  stagedDir = path.join(config.stateDir, 'staged', SERVICE, '2.0.0');
  await calculator2(stagedDir);
  const port = await freePort();
  const child: ResultPromise = execa('node', ['src/index.js'], { cwd: stagedDir, env: { PATH: process.env.PATH ?? '', PORT: String(port) }, extendEnv: false, reject: false, stdin: 'ignore' });
  cleanup.push(async () => {
    child.kill('SIGTERM');
    await child;
  });
  const url = `http://127.0.0.1:${port}/mcp`;
  await until('the calculator 2.0.0', async () => {
    assert.equal(child.exitCode, null, 'the calculator exited before it was ready');
    return fetch(url, { method: 'GET' }).then((r) => r.status, () => undefined);
  });
  store = await connectStore(mongoUri, config.mongo.database);
  cleanup.push(async () => {
    await store.db.dropDatabase();
    await store.close();
  });
  await ensureIndexes(store);
  const now = new Date();
  await store.versions.insertOne({ service: SERVICE, version: '2.0.0', state: 'ACTIVE', hash: 'h2', files: [], stagedDir, steps: [], tools: {}, createdAt: now, updatedAt: now, history: [] });
  await store.instances.insertOne({ instanceId: 'calc-2', service: SERVICE, version: '2.0.0', url, state: 'ready', restarts: 0, updatedAt: now });
  await setRouting(store, SERVICE, { stable: '2.0.0', weights: { '2.0.0': 100 } });
  api = await startApi({ config, store, events: new EventStore(store), log: createLogger('warn', 'compat-pinning'), temporalAddress });
  cleanup.push(() => api.close());
});

/** A fetch that sends the pin (and a trace parent) on every request, as a client built against 1.0.0 would. */
const pinnedFetch = (version: string, traceparent?: string) => (input: string | URL | Request, init?: RequestInit) => {
  const headers = new Headers(init?.headers);
  headers.set(PIN_HEADER, version);
  if (traceparent) headers.set('traceparent', traceparent);
  return fetch(input, { ...init, headers });
};

type Schema = { properties?: Record<string, unknown>; required?: string[] };

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

test('an SDK 1.x client pinned to 1.0.0 works against 2.0.0 through the transform chain', async () => {
  const transport = new StreamableHTTPClientTransport(new URL(`${api.url}/mcp/${SERVICE}`), { fetch: pinnedFetch('1.0.0', `00-${TRACE_ID}-00f067aa0ba902b7-01`) });
  const client = new Client({ name: 'old-calculator-client', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const add = tools.find((t) => t.name === 'add')!;
  assert.deepEqual(Object.keys((add.inputSchema as Schema).properties ?? {}).sort(), ['a', 'b'], '1.0.0 tool shapes');
  assert.deepEqual((add.inputSchema as Schema).required?.sort(), ['a', 'b']);
  assert.deepEqual(Object.keys((add.outputSchema as Schema).properties ?? {}), ['result']);
  // The SDK checks structuredContent against the (transformed) outputSchema: a shape mismatch would throw.
  const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } });
  assert.deepEqual(sum.structuredContent, { result: 5 });
  const product = await client.callTool({ name: 'multiply', arguments: { a: 6, b: 7 } });
  assert.deepEqual(product.structuredContent, { result: 42 });
  const division = await client.callTool({ name: 'divide', arguments: { a: 1, b: 0 } });
  assert.equal(division.isError, true);
  await transport.terminateSession();
  await client.close();
});

test('an SDK v2 stateless (2026-07-28) client pinned to 1.0.0 too; an unpinned client sees 2.0.0', async () => {
  const transport = new StatelessTransport(new URL(`${api.url}/mcp/${SERVICE}`), { fetch: pinnedFetch('1.0.0') });
  const client = new StatelessClient({ name: 'old-stateless-client', version: '0.9.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(transport);
  const sub = await client.callTool({ name: 'subtract', arguments: { a: 10, b: 4 } });
  assert.deepEqual(sub.structuredContent, { result: 6 });
  await client.close();

  const plain = new Client({ name: 'new-client', version: '2.0.0' });
  const plainTransport = new StreamableHTTPClientTransport(new URL(`${api.url}/mcp/${SERVICE}`));
  await plain.connect(plainTransport);
  assert.deepEqual((await plain.callTool({ name: 'add', arguments: { x: 1, y: 1 } })).structuredContent, { value: 2 });
  await plainTransport.terminateSession();
  await plain.close();
});

test('a pin the chain cannot serve is refused with the reason', async () => {
  const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
  const ask = (version: string) =>
    fetch(`${api.url}/mcp/${SERVICE}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', [PIN_HEADER]: version }, body: initialize });
  const older = await ask('0.5.0');
  assert.equal(older.status, 400);
  assert.match(((await older.json()) as { error: { message: string } }).error.message, /no transform covers version 0\.5\.0/);
  const newer = await ask('3.0.0');
  assert.equal(newer.status, 400);
  assert.match(((await newer.json()) as { error: { message: string } }).error.message, /serves 2\.0\.0, older than the pinned 3\.0\.0/);
  assert.equal((await ask('1.0')).status, 400);
});

test('capture records the pin, the chain and the trace; the round trip of the captured traffic is exact; counters are stored', async () => {
  await api.traffic.capture!.flush();
  const docs = await store.messages.find({ service: SERVICE }).sort({ at: 1 }).toArray();
  const pinned = docs.filter((d) => d.versionAsked === '1.0.0');
  assert.ok(pinned.length >= 10, `pinned messages captured (${pinned.length})`);
  for (const d of pinned) assert.deepEqual(d.transforms, ['transforms/1.0-to-2.0.ts']);
  const call = pinned.find((d) => d.direction === 'client_to_server' && d.toolName === 'add')!;
  assert.match(call.raw, /"a":2/, 'the request is stored as the client wrote it');
  assert.equal(call.traceId, TRACE_ID, 'the client traceparent passed through');
  assert.equal(call.clientName, 'old-calculator-client');
  const answer = pinned.find((d) => d.direction === 'server_to_client' && d.toolName === 'add')!;
  assert.match(answer.raw, /"value":5/, 'the answer is stored as the server wrote it');
  const unpinned = docs.find((d) => d.versionAsked === undefined && d.direction === 'client_to_server');
  assert.match(unpinned?.traceId ?? '', /^[0-9a-f]{32}$/, 'a trace id is made when the client sends none');

  const { reports } = roundTripCaptured(SERVICE, await loadTransforms(stagedDir), '2.0.0', docs);
  assert.equal(reports.length, 1);
  const report = reports[0]!;
  assert.equal(report.from, '1.0.0');
  assert.ok(report.total >= 8, `messages round-tripped (${report.total})`);
  assert.deepEqual({ lossy: report.lossy, failed: report.failed }, { lossy: 0, failed: 0 }, JSON.stringify(report.samples));
  assert.equal(report.exact + report.unchecked, report.total);
  assert.ok(report.exact >= 6, `exact (${report.exact}); unchecked are tools/list answers (no inverse of toolsListBackward)`);

  await api.traffic.pinning.counters.flush();
  const counters = await store.transformMetrics.find({ service: SERVICE }).toArray();
  assert.equal(counters.length, 1);
  assert.ok(counters[0]!.forwardApplied >= 4 && counters[0]!.backwardApplied >= 4, JSON.stringify(counters[0]));
  assert.equal(counters[0]!.forwardFailed + counters[0]!.backwardFailed, 0);
});
