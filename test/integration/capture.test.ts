import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { CaptureWriter, REDACTED } from '../../api/gateway/capture.ts';
import type { ExchangeContext, JsonRpcMessage } from '../../api/gateway/traffic.ts';
import type { MessageDoc } from '../../core/documents.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
const { mongoUri } = stackAddresses();
let store: Store;
const cleanup: (() => Promise<void> | void)[] = [];

before(async () => {
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
});

after(async () => {
  for (const step of cleanup.reverse()) await step();
  await store.db.dropDatabase();
  await store.close();
});

const size = (m: unknown) => Buffer.byteLength(JSON.stringify(m));

function ctxOf(service: string, sessionId?: string): ExchangeContext {
  return { service, version: '1.0.0', instanceId: 'i-1', ...(sessionId ? { sessionId } : {}), startedAt: performance.now() };
}

/** One tools/call round trip: request, a progress notification, then the response. */
function roundTrip(w: CaptureWriter, service: string, n: number, sessionId = `s-${n % 4}`) {
  const ctx = ctxOf(service, sessionId);
  const req = { jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: 'add', arguments: { a: n, b: 1 } } };
  const note = { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: n, progress: 1 } };
  const res = { jsonrpc: '2.0', id: n, result: { content: [{ type: 'text', text: String(n + 1) }] } };
  w.message(ctx, 'client_to_server', req, 'json', size(req));
  w.message(ctx, 'server_to_client', note, 'sse', size(note));
  w.message(ctx, 'server_to_client', res, 'sse', size(res));
}

async function messagesOf(s: Store, service: string): Promise<MessageDoc[]> {
  return s.messages.find({ service }, { projection: { _id: 0 } }).toArray();
}

test('every message becomes exactly one document with its content, redacted and capped as configured', async () => {
  const w = new CaptureWriter({
    messages: store.messages,
    spillDir: path.join(config.stateDir, 'capture-spill'),
    redact: config.gateway.capture.redact,
    maxPayloadBytes: 512,
    batchSize: 16,
  });
  const sent: { direction: MessageDoc['direction']; msg: JsonRpcMessage; transport: 'json' | 'sse' }[] = [];
  const send = (ctx: ExchangeContext, direction: MessageDoc['direction'], msg: JsonRpcMessage, transport: 'json' | 'sse' = 'json') => {
    sent.push({ direction, msg, transport });
    w.message(ctx, direction, msg, transport, size(msg));
  };

  const init = ctxOf('exact'); // initialize: no session yet, the response is matched within the exchange
  send(init, 'client_to_server', { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  send(init, 'server_to_client', { jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 's', version: '1' } } });
  send(ctxOf('exact', 'sess'), 'client_to_server', { jsonrpc: '2.0', method: 'notifications/initialized' });
  for (let i = 1; i <= 40; i++) {
    const ctx = ctxOf('exact', 'sess');
    send(ctx, 'client_to_server', { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'login', arguments: { user: `u${i}`, password: `pw${i}` } } });
    const response =
      i % 10 === 0
        ? { jsonrpc: '2.0', id: i, error: { code: -32603, message: 'boom' } }
        : { jsonrpc: '2.0', id: i, result: { isError: i % 7 === 0, content: [{ type: 'text', text: `hello u${i}` }] } };
    send(ctx, 'server_to_client', response, i % 2 ? 'sse' : 'json');
  }
  // A response on another stream of the same session (the GET SSE stream) is still matched, and a
  // request counts from when its exchange began, however late the gateway reports it.
  const longCtx = { ...ctxOf('exact', 'sess'), startedAt: performance.now() - 1_000 };
  send(longCtx, 'client_to_server', { jsonrpc: '2.0', id: 'long', method: 'tools/call', params: { name: 'slow', arguments: {} } });
  send(ctxOf('exact', 'sess'), 'server_to_client', { jsonrpc: '2.0', id: 'long', result: { content: [] } }, 'sse');
  const big = { jsonrpc: '2.0', id: 'big', result: { content: [{ type: 'text', text: 'é'.repeat(2_000) }] } };
  send(ctxOf('exact', 'sess'), 'server_to_client', big);

  await w.close();
  const n = sent.length;
  assert.equal(n, 86);
  const c = w.counters;
  assert.deepEqual(
    { captured: c.captured, written: c.written, spilled: c.spilled, replayed: c.replayed, dropped: c.dropped, buffered: c.buffered, spillPending: c.spillPending },
    { captured: n, written: n, spilled: 0, replayed: 0, dropped: 0, buffered: 0, spillPending: 0 },
  );

  const docs = await messagesOf(store, 'exact');
  assert.equal(docs.length, n);
  assert.equal(new Set(docs.map((d) => d.messageId)).size, n, 'a fresh messageId each');
  const key = (direction: string, rpcId: unknown, method?: string) => `${direction}|${JSON.stringify(rpcId)}|${method ?? ''}`;
  const byKey = new Map(docs.map((d) => [key(d.direction, d.rpcId, d.kind === 'notification' ? d.method : undefined), d]));
  assert.equal(byKey.size, n);

  for (const { direction, msg, transport } of sent) {
    const doc = byKey.get(key(direction, msg.id, 'id' in msg ? undefined : (msg.method as string)));
    assert.ok(doc, `stored: ${JSON.stringify(msg).slice(0, 80)}`);
    assert.equal(doc.service, 'exact');
    assert.equal(doc.version, '1.0.0');
    assert.equal(doc.transport, transport);
    assert.equal(doc.size, size(msg));
    assert.ok(doc.at instanceof Date);
    if (msg === big) continue;
    assert.equal(doc.truncated, false);
    const args = (msg.params as { arguments?: Record<string, unknown> } | undefined)?.arguments;
    if (args && 'password' in args) {
      assert.deepEqual(doc.payload, { ...msg, params: { ...(msg.params as object), arguments: { ...args, password: REDACTED } } });
    } else {
      assert.deepEqual(doc.payload, msg);
    }
  }

  const kinds = (k: MessageDoc['kind']) => docs.filter((d) => d.kind === k).length;
  assert.deepEqual([kinds('request'), kinds('notification'), kinds('response'), kinds('error')], [42, 1, 39, 4]);
  const requests = docs.filter((d) => d.kind === 'request');
  assert.ok(requests.every((d) => d.method === 'initialize' || d.method === 'tools/call'));
  assert.ok(requests.every((d) => d.latencyMs === undefined));
  const answers = docs.filter((d) => d.direction === 'server_to_client' && d.rpcId !== 'big');
  assert.equal(answers.length, 42);
  for (const d of answers) assert.ok(typeof d.latencyMs === 'number' && d.latencyMs >= 0, `latency of ${String(d.rpcId)}`);
  assert.ok(byKey.get(key('server_to_client', 'long'))!.latencyMs! >= 1_000);
  assert.equal(byKey.get(key('server_to_client', 0))!.sessionId, undefined);
  assert.equal(byKey.get(key('client_to_server', 1))!.sessionId, 'sess');

  const bigDoc = byKey.get(key('server_to_client', 'big'))!;
  assert.equal(bigDoc.truncated, true);
  assert.equal(typeof bigDoc.payload, 'string');
  assert.ok(Buffer.byteLength(bigDoc.payload as string) <= 512);
  assert.ok(JSON.stringify(big).startsWith(bigDoc.payload as string));
  assert.equal(bigDoc.latencyMs, undefined, 'no request was seen for it');
});

test('while MongoDB is stopped messages spill to disk; after its restart they are replayed, exactly once', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-capture-ferret-'));
  const port = await freePort();
  const debugPort = await freePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  let ferret: ManagedProcess = launchFerretdb({ stateDir: dir, port, debugPort });
  cleanup.push(async () => {
    await ferret.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'FerretDB answers ping');

  const own = await connectStore(uri, 'capture_outage');
  cleanup.push(() => own.close());
  await ensureIndexes(own);
  // The writer's own client gives up on a stopped server after 1 s rather than connectStore's 10 s,
  // only to keep the test short; the behaviour is the same.
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1_000 });
  cleanup.push(() => client.close());
  const spillDir = path.join(dir, 'capture-spill');
  const w = new CaptureWriter({
    messages: client.db('capture_outage').collection<MessageDoc>('messages'),
    spillDir,
    maxBufferedMessages: 10,
    batchSize: 8,
    retryMs: 200,
  });
  cleanup.push(() => w.close());

  for (let i = 0; i < 10; i++) {
    roundTrip(w, 'outage', i); // 30 messages while MongoDB is up, never more than the buffer holds
    if (i % 3 === 2) await w.flush();
  }
  await w.flush();
  assert.equal(w.counters.written, 30);
  assert.equal(w.counters.spilled, 0);

  await ferret.stop();
  for (let i = 10; i < 30; i++) roundTrip(w, 'outage', i); // 60 messages while it is down
  assert.ok(w.counters.spilled >= 50, 'beyond the 10-message buffer they go to disk at once');
  assert.ok(w.counters.buffered <= 10);
  await w.flush();
  let c = w.counters;
  assert.equal(c.spilled, 60);
  assert.equal(c.spillPending, 60);
  assert.equal(c.buffered, 0);
  assert.equal(c.written, 30);
  const lines = readdirSync(spillDir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(path.join(spillDir, f), 'utf8').split('\n').filter(Boolean));
  assert.equal(lines.length, 60);
  assert.equal(new Set(lines.map((l) => (JSON.parse(l) as MessageDoc).messageId)).size, 60);

  ferret = launchFerretdb({ stateDir: dir, port, debugPort });
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'FerretDB answers ping again');
  for (let i = 30; i < 40; i++) roundTrip(w, 'outage', i); // 30 more once it is back

  // The writer retries on its own; flush() only hurries it. A bounded wait, not a timing assertion.
  for (let attempt = 0; attempt < 60 && (w.counters.spillPending > 0 || w.counters.buffered > 0); attempt++) {
    await w.flush();
    if (w.counters.spillPending > 0) await new Promise((r) => setTimeout(r, 250));
  }
  await w.close();
  c = w.counters;
  assert.equal(c.captured, 120);
  assert.equal(c.dropped, 0);
  assert.equal(c.spillPending, 0);
  assert.equal(c.buffered, 0);
  assert.equal(c.replayed, c.spilled, 'everything spilled came back');
  assert.equal(c.written + c.replayed, 120);

  const docs = await messagesOf(own, 'outage');
  assert.equal(docs.length, 120);
  assert.equal(new Set(docs.map((d) => d.messageId)).size, 120);
  for (let i = 0; i < 40; i++) {
    const mine = docs.filter((d) => d.rpcId === i || (d.payload as { params?: { progressToken?: number } }).params?.progressToken === i);
    assert.deepEqual(mine.map((d) => d.kind).sort(), ['notification', 'request', 'response'], `round trip ${i}`);
    const res = mine.find((d) => d.kind === 'response')!;
    assert.deepEqual(res.payload, { jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: String(i + 1) }] } });
    assert.ok(res.at instanceof Date, 'the date survives the spill');
  }
  assert.deepEqual(readdirSync(spillDir), [], 'replayed files are removed');
});

test('a spill left by a dead gateway is adopted and replayed; messages it finds already stored are not duplicated', async () => {
  const spillDir = path.join(config.stateDir, 'orphan-spill');
  const docs: MessageDoc[] = Array.from({ length: 10 }, (_, i) => ({
    messageId: randomUUID(),
    service: 'orphan',
    version: '1.0.0',
    sessionId: 'dead-session',
    direction: 'client_to_server',
    kind: 'request',
    method: 'tools/call',
    rpcId: i,
    payload: { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'x' } },
    truncated: false,
    size: 60,
    at: new Date(1_700_000_000_000 + i),
    transport: 'json',
  }));
  await store.messages.insertMany(docs.slice(0, 4).map((d) => ({ ...d }))); // stored before the crash
  const deadPid = 4_194_305; // above Linux's largest pid_max: never alive
  mkdirSync(spillDir, { recursive: true });
  writeFileSync(path.join(spillDir, `${deadPid}.deadbeef.0.jsonl`), docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  writeFileSync(path.join(spillDir, `${process.pid}.alive000.0.jsonl`), ''); // a live writer's file is left alone

  const w = new CaptureWriter({ messages: store.messages, spillDir });
  assert.equal(w.counters.adopted, 10);
  assert.equal(w.counters.spillPending, 10);
  await w.flush();
  await w.close();
  const c = w.counters;
  assert.equal(c.replayed, 10);
  assert.equal(c.dropped, 0);
  assert.equal(c.spillPending, 0);

  const stored = await messagesOf(store, 'orphan');
  assert.equal(stored.length, 10);
  assert.deepEqual(stored.map((d) => d.rpcId).sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(
    stored.find((d) => d.rpcId === 7),
    docs[7],
  );
  assert.deepEqual(readdirSync(spillDir), [`${process.pid}.alive000.0.jsonl`]);
});

test('a writer closed while MongoDB is away leaves its spill to the next writer', async () => {
  const spillDir = path.join(config.stateDir, 'handover-spill');
  // An unreachable server: the first write fails, so everything goes to the spill.
  const client = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/`, { serverSelectionTimeoutMS: 300 });
  cleanup.push(() => client.close());
  const first = new CaptureWriter({ messages: client.db('nowhere').collection<MessageDoc>('messages'), spillDir });
  for (let i = 0; i < 5; i++) roundTrip(first, 'handover', i);
  await first.close();
  assert.equal(first.counters.spilled, 15);
  assert.equal(first.counters.spillPending, 15);
  assert.equal(first.counters.dropped, 0);

  const second = new CaptureWriter({ messages: store.messages, spillDir });
  assert.equal(second.counters.adopted, 15);
  await second.close();
  assert.equal(second.counters.replayed, 15);
  assert.equal((await messagesOf(store, 'handover')).length, 15);
  assert.deepEqual(readdirSync(spillDir), []);
});
