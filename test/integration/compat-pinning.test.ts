/**
 * Version pinning end to end: the calculator at 2.0.0 (operands x/y, result `value`) runs as a
 * real process behind startApi's gateway, with its transforms/1.0-to-2.0.ts in its staged folder.
 * Real SDK clients built against 1.0.0 (a/b, `result`) ask for 1.0.0 with X-Mcpship-Service-Version
 * and work unchanged: the tool list, calls (JSON and SSE answers) and errors come in 1.0.0's
 * shapes. Capture records the pin, the chain and the trace id, and the round trip of that
 * captured traffic through the chain is exact. Validation's transforms step accepts the chain
 * and refuses broken ones with the reason; the matrix is served by the API and the CLI.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as StatelessClient, StreamableHTTPClientTransport as StatelessTransport } from '@modelcontextprotocol/client';
import { execa, type ResultPromise } from 'execa';
import { startApi, type ApiHandle } from '../../api/server.ts';
import { PIN_HEADER } from '../../api/gateway/pinning.ts';
import { transformActivities } from '../../activities/transforms.ts';
import { buildChain, forwardRequest } from '../../compat/chain.ts';
import { capturedCalls, capturedTools, roundTripCaptured } from '../../compat/captured.ts';
import { loadTransforms } from '../../compat/load.ts';
import { schemaCells, writeCells } from '../../compat/matrix.ts';
import { diffTools } from '../../compat/schema-diff.ts';
import type { CompatAnswer } from '../../api/routes/compatibility.ts';
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
  // Clients that cannot send the pin header are pinned in the configuration (gateway.pins).
  config.gateway.pins = { [SERVICE]: { 'name:configured-old-client': '1.0.0', 'client:legacy-bot': '1.0.0' } };
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
  assert.match(((await newer.json()) as { error: { message: string } }).error.message, /serves 2\.0\.0, older than 3\.0\.0 pinned by x-mcpship-service-version/);
  assert.equal((await ask('1.0')).status, 400);
});

test('clients that send no pin header are pinned by the configuration: by clientInfo name, by X-Mcpship-Client', async () => {
  const byName = new Client({ name: 'configured-old-client', version: '1.0.0' });
  const nameTransport = new StreamableHTTPClientTransport(new URL(`${api.url}/mcp/${SERVICE}`));
  await byName.connect(nameTransport);
  const add = (await byName.listTools()).tools.find((t) => t.name === 'add')!;
  assert.deepEqual(Object.keys((add.inputSchema as Schema).properties ?? {}).sort(), ['a', 'b'], '1.0.0 tool shapes for the whole session');
  assert.deepEqual((await byName.callTool({ name: 'add', arguments: { a: 20, b: 22 } })).structuredContent, { result: 42 });
  await nameTransport.terminateSession();
  await byName.close();

  const byKey = new Client({ name: 'some-bot', version: '3.1.0' });
  const keyTransport = new StreamableHTTPClientTransport(new URL(`${api.url}/mcp/${SERVICE}`), { requestInit: { headers: { 'X-Mcpship-Client': 'legacy-bot' } } });
  await byKey.connect(keyTransport);
  assert.deepEqual((await byKey.callTool({ name: 'multiply', arguments: { a: 3, b: 5 } })).structuredContent, { result: 15 });
  await keyTransport.terminateSession();
  await byKey.close();

  await api.traffic.capture!.flush();
  const calls = await store.messages.find({ service: SERVICE, direction: 'client_to_server', method: 'tools/call', clientName: { $in: ['configured-old-client', 'some-bot'] } }).toArray();
  assert.equal(calls.length, 2);
  for (const call of calls) assert.deepEqual([call.versionAsked, call.transforms], ['1.0.0', ['transforms/1.0-to-2.0.ts']], call.raw);
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

/** A version folder holding only the given transforms (what the transforms step reads). */
async function folderWith(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(config.stateDir, 'work', SERVICE, name);
  await mkdir(path.join(dir, 'transforms'), { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, 'transforms', file), text);
  return dir;
}

test('validation: the transforms step passes the sample chain over the capture and refuses broken transforms with the reason', async () => {
  const { checkTransforms } = transformActivities({ store });
  const good = await checkTransforms({ service: SERVICE, dir: stagedDir, version: '2.0.0' });
  assert.ok(good.ok, JSON.stringify(good));
  assert.deepEqual(good.transforms, ['transforms/1.0-to-2.0.ts']);
  assert.equal(good.reports[0]!.failed + good.reports[0]!.lossy, 0);

  const throwing = await folderWith('throwing', {
    '1.0-to-2.0.ts': `export default { from: '1.0.0', to: '2.0.0', description: 'broken', requestForward(msg: any) { if (msg.method === 'tools/call') throw new Error('no arguments here: ' + msg.params.arguments.zzz.length); return msg; } };`,
  });
  const thrown = await checkTransforms({ service: SERVICE, dir: throwing, version: '2.0.0' });
  assert.equal(thrown.ok, false);
  assert.match((thrown as { reason: string }).reason, /transforms\/1\.0-to-2\.0\.ts throws in requestForward on captured message [0-9a-f-]+ \(tools\/call add\)/);

  const gap = await folderWith('gap', {
    '1.0-to-2.0.ts': await import('node:fs/promises').then((fs) => fs.readFile(path.join(stagedDir, 'transforms/1.0-to-2.0.ts'), 'utf8')),
    '3.0-to-4.0.ts': `export default { from: '3.0.0', to: '4.0.0', description: 'later', sideEffects: true };`,
  });
  assert.match(((await checkTransforms({ service: SERVICE, dir: gap, version: '4.0.0' })) as { reason: string }).reason, /gap in the chain: nothing migrates 2\.0\.0 to 3\.0\.0/);

  const unloadable = await folderWith('unloadable', { '1.0-to-2.0.ts': 'export default { from: ' });
  assert.match(((await checkTransforms({ service: SERVICE, dir: unloadable, version: '2.0.0' })) as { reason: string }).reason, /transforms\/1\.0-to-2\.0\.ts: does not load/);

  const shapeless = await folderWith('shapeless', { '1.0-to-2.0.ts': `export default { from: '1.0.0', to: '2.0.0' };` });
  assert.match(((await checkTransforms({ service: SERVICE, dir: shapeless, version: '2.0.0' })) as { reason: string }).reason, /not a transform \(description: Required/);
});

test('schema compatibility of 1.0.0 and 2.0.0 weighted by the captured calls: breaking without the chain, nothing rejected through it', async () => {
  const docs = await store.messages.find({ service: SERVICE }).sort({ at: 1 }).toArray();
  const after = capturedTools(docs, '2.0.0');
  assert.ok(after, 'a captured tools/list of 2.0.0');
  const transforms = await loadTransforms(stagedDir);
  const chain = buildChain(SERVICE, transforms, '1.0.0', '2.0.0');
  // 1.0.0's tool list: what its pinned clients were shown.
  const listed = forwardRequest(chain, { jsonrpc: '2.0', id: 0, method: 'tools/list' });
  const { backwardResponse } = await import('../../compat/chain.ts');
  const before = (backwardResponse(chain, { jsonrpc: '2.0', id: 0, result: { tools: after } }, listed).message.result as { tools: typeof after }).tools;
  const calls = capturedCalls(docs).filter((c) => c.versionAsked === '1.0.0');
  assert.ok(calls.length >= 4);
  const raw = diffTools(SERVICE, '1.0.0', '2.0.0', before, after, calls);
  assert.equal(raw.class, 'breaking');
  assert.equal(raw.rejectedCalls, calls.length, 'every recorded 1.0.0 call would be rejected by 2.0.0 as is');
  assert.ok(raw.changes.some((c) => c.tool === 'add' && c.kind === 'required_input_added'));
  const through = diffTools(SERVICE, '1.0.0', '2.0.0', before, after, calls, (c) => {
    const moved = forwardRequest(chain, { jsonrpc: '2.0', id: 0, method: 'tools/call', params: { name: c.tool, arguments: c.arguments } }).message.params as { name: string; arguments: unknown };
    return { tool: moved.name, arguments: moved.arguments };
  });
  assert.equal(through.rejectedCalls, 0);
  await writeCells(store, SERVICE, '2.0.0', 'schema', schemaCells(through, 'test'));
});

test('the matrix is served by the API and the CLI', async () => {
  const res = await fetch(`${api.url}/api/services/${SERVICE}/compatibility`);
  assert.equal(res.status, 200);
  const answer = (await res.json()) as CompatAnswer;
  const row = answer.rows.find((r) => r.version === '2.0.0');
  assert.ok(row, JSON.stringify(answer));
  const cell = (key: string, source: string) => row.cells.find((c) => c.source === source && (c.column.kind === 'tool' ? `tool:${c.column.tool}` : `client:${c.column.clientName}`) === key);
  assert.equal(cell('client:old-calculator-client', 'round_trip')?.status, 'equal');
  assert.equal(cell('tool:add', 'round_trip')?.status, 'equal');
  // The schemas themselves break an unpinned 1.0.0 client (required inputs x, y), though no recorded call is rejected through the chain.
  const schema = cell('tool:add', 'schema');
  assert.equal(schema?.status, 'breaks');
  assert.ok(schema.topPaths.some((p) => p.path === 'required_input_added/properties/x' && p.count === 0), JSON.stringify(schema.topPaths));
  assert.equal(answer.transforms[0]?.forwardSuccessRate, 1);

  const cli = (...args: string[]) => execa(process.execPath, ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts'), 'compat', SERVICE, ...args, '--api', api.url], { cwd: ROOT, reject: false });
  const json = await cli('--json');
  assert.equal(json.exitCode, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout).rows.map((r: { version: string }) => r.version), answer.rows.map((r) => r.version));
  const table = await cli();
  assert.equal(table.exitCode, 0, table.stderr);
  assert.match(table.stdout, /^version\s+client:/m);
  assert.match(table.stdout, /^2\.0\.0\s+.*rt:equal/m);
  assert.match(table.stdout, /transforms\/1\.0-to-2\.0\.ts {2}\d+ \/ 0, \d+ \/ 0, 100\.0% \/ 100\.0%/);
  const missing = await fetch(`${api.url}/api/services/Bad_Name/compatibility`);
  assert.equal(missing.status, 400);
});
