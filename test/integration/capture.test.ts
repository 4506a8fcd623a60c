/**
 * The capture writer against the real FerretDB of the test stack (and a FerretDB of its own that
 * is stopped and started): what it is given is stored once, byte for byte, whatever the payload.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { CaptureWriter } from '../../api/gateway/capture.ts';
import { DROP_EVENT_KIND } from '../../api/gateway/capture/drops.ts';
import { REDACTED } from '../../api/gateway/capture/redact.ts';
import type { ExchangeContext, JsonRpcMessage } from '../../api/gateway/traffic.ts';
import { capturedMessage, type MessageDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { freePort } from '../../stack/ports.ts';
import { startOwnFerretdb } from '../support/own-ferretdb.ts';
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

/** Drives the writer until nothing waits in memory or in the spill; the loop bound only stops a hang. */
async function drain(w: CaptureWriter): Promise<void> {
  for (let attempt = 0; attempt < 240 && (w.counters.spillPending > 0 || w.counters.buffered > 0); attempt++) {
    await w.flush();
    if (w.counters.spillPending > 0) await new Promise((r) => setTimeout(r, 250));
  }
}

// A 2020-12 schema as servers list it: `$schema`, `$defs`, `$ref`: field names MongoDB-wire servers refuse.
const TOOLS_LIST = JSON.stringify({
  jsonrpc: '2.0',
  id: 2,
  result: {
    tools: [
      {
        name: 'json_schema_2020_12_tool',
        inputSchema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          $defs: { address: { type: 'object', properties: { 'street.line': { type: 'string' } } } },
          properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
          additionalProperties: false,
        },
      },
    ],
  },
});
// A 2026-07-28 request: its protocol version and capabilities in `_meta`, under dotted keys.
const STATELESS_CALL =
  '{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},' +
  '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"2.4.0"}}}}';
// As a non-JavaScript client writes it: spaces, key order, number spellings and escapes JSON.stringify would change.
const HAND_WRITTEN = '{ "params" : {"name": "add", "arguments": {"a": 1.50, "b": -0, "c": 1e2, "s": "caf\\u00e9 \\/ \\ud83d\\ude00"}}, "method":"tools/call", "id" : 3 , "jsonrpc":"2.0" }\n';
const DEEP = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"deep":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`;
// A PNG of 256 KiB, base64 in an image content block.
const IMAGE = JSON.stringify({
  jsonrpc: '2.0',
  id: 5,
  result: { content: [{ type: 'image', mimeType: 'image/png', data: Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 31) % 256)).toString('base64') }] },
});

test('real MCP payloads ($schema, dotted _meta keys, hand-written JSON, 10,000-deep nesting, base64 images): N sent, N stored, byte-identical', async () => {
  const w = new CaptureWriter({ messages: store.messages, spillDir: path.join(config.stateDir, 'payloads-spill'), maxPayloadBytes: 1024 * 1024, batchSize: 4 });
  const sent: { raw: string; direction: MessageDoc['direction'] }[] = [];
  const send = (direction: MessageDoc['direction'], raw: string, sessionId?: string) => {
    sent.push({ raw, direction });
    w.message(ctxOf('payloads', sessionId), direction, JSON.parse(raw) as JsonRpcMessage, 'json', Buffer.byteLength(raw), raw);
  };
  for (let round = 0; round < 3; round++) {
    // Mixed in one batch with ordinary messages: none of them may be held up.
    send('client_to_server', `{"jsonrpc":"2.0","id":${100 + round},"method":"tools/list"}`, 'sess');
    send('server_to_client', TOOLS_LIST, 'sess');
    send('client_to_server', STATELESS_CALL);
    send('client_to_server', HAND_WRITTEN, 'sess');
    send('client_to_server', DEEP, 'sess');
    send('server_to_client', IMAGE, 'sess');
  }
  await w.close();
  const c = w.counters;
  assert.deepEqual({ captured: c.captured, written: c.written, quarantined: c.quarantined, dropped: c.dropped, spilled: c.spilled }, { captured: 18, written: 18, quarantined: 0, dropped: 0, spilled: 0 });

  const docs = await messagesOf(store, 'payloads');
  assert.equal(docs.length, sent.length, 'N sent, N stored');
  const stored = docs.map((d) => d.raw).sort();
  assert.deepEqual(stored, sent.map((s) => s.raw).sort(), 'byte-identical');
  for (const d of docs) {
    assert.equal(d.truncated, false);
    assert.equal(Buffer.byteLength(d.raw), d.size);
    // assert.deepEqual itself recurses too deep for the nested one: compare its texts instead.
    if (d.rpcId === 4) assert.equal(capturedMessage(d).id, 4);
    else assert.deepEqual(capturedMessage(d), JSON.parse(d.raw));
  }
  const call = docs.find((d) => d.rpcId === 'c-1')!;
  assert.deepEqual({ protocolRevision: call.protocolRevision, toolName: call.toolName, method: call.method, kind: call.kind }, { protocolRevision: '2026-07-28', toolName: 'add', method: 'tools/call', kind: 'request' });
  assert.equal(((capturedMessage(docs.find((d) => d.rpcId === 2)!).result as { tools: { inputSchema: Record<string, unknown> }[] }).tools[0]!.inputSchema.$schema), 'https://json-schema.org/draft/2020-12/schema');
  // The fields the replay will query are queryable.
  assert.equal(await store.messages.countDocuments({ service: 'payloads', protocolRevision: '2026-07-28' }), 3);
  assert.equal(await store.messages.countDocuments({ service: 'payloads', method: 'tools/list', direction: 'client_to_server' }), 3);
});

test('every message becomes exactly one document, redacted and capped as configured, responses paired with their requests', async () => {
  const w = new CaptureWriter({
    messages: store.messages,
    spillDir: path.join(config.stateDir, 'capture-spill'),
    redact: ['result.secret'],
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
    send(ctx, 'client_to_server', { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'login', arguments: { user: `u${i}`, PassWord: `pw${i}` } } });
    const response =
      i % 10 === 0
        ? { jsonrpc: '2.0', id: i, error: { code: -32603, message: 'boom' } }
        : { jsonrpc: '2.0', id: i, result: { isError: i % 7 === 0, content: [{ type: 'text', text: `hello u${i}` }], secret: 's' } };
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
    const result = msg.result as Record<string, unknown> | undefined;
    if (args && 'PassWord' in args) {
      assert.equal(doc.redacted, true);
      assert.deepEqual(capturedMessage(doc), { ...msg, params: { ...(msg.params as object), arguments: { ...args, PassWord: REDACTED } } });
    } else if (result && 'secret' in result) {
      assert.equal(doc.redacted, true);
      assert.deepEqual(capturedMessage(doc), { ...msg, result: { ...result, secret: REDACTED } });
    } else {
      assert.equal(doc.redacted, false);
      assert.equal(doc.raw, JSON.stringify(msg));
    }
  }

  const kinds = (k: MessageDoc['kind']) => docs.filter((d) => d.kind === k).length;
  assert.deepEqual([kinds('request'), kinds('notification'), kinds('response'), kinds('error')], [42, 1, 39, 4]);
  const requests = docs.filter((d) => d.kind === 'request');
  assert.ok(requests.every((d) => d.latencyMs === undefined));
  const answers = docs.filter((d) => d.direction === 'server_to_client' && d.rpcId !== 'big');
  assert.equal(answers.length, 42);
  for (const d of answers) assert.ok(typeof d.latencyMs === 'number' && d.latencyMs >= 0, `latency of ${String(d.rpcId)}`);
  assert.ok(byKey.get(key('server_to_client', 'long'))!.latencyMs! >= 1_000);
  assert.equal(byKey.get(key('server_to_client', 0))!.sessionId, undefined);
  assert.equal(byKey.get(key('client_to_server', 1))!.sessionId, 'sess');
  assert.equal(byKey.get(key('server_to_client', 1))!.toolName, 'login', 'a response carries the tool its request called');
  assert.equal(byKey.get(key('server_to_client', 7))!.isError, true);
  assert.equal(byKey.get(key('server_to_client', 8))!.isError, false);

  const bigDoc = byKey.get(key('server_to_client', 'big'))!;
  assert.equal(bigDoc.truncated, true);
  assert.ok(Buffer.byteLength(bigDoc.raw) <= 512);
  assert.ok(JSON.stringify(big).startsWith(bigDoc.raw));
  assert.equal(bigDoc.latencyMs, undefined, 'no request was seen for it');
});

test('a message FerretDB refuses is quarantined with the reason; the messages around it are stored, none blocked', async () => {
  // A payload cap beyond what the configuration allows lets through a document over MongoDB's
  // 16 MiB limit: a refusal that is real, not simulated.
  const w = new CaptureWriter({ messages: store.messages, spillDir: path.join(config.stateDir, 'refused-spill'), maxPayloadBytes: 32 * 1024 * 1024, batchSize: 50 });
  const huge = JSON.stringify({ jsonrpc: '2.0', id: 'huge', result: { content: [{ type: 'text', text: 'x'.repeat(17 * 1024 * 1024) }] } });
  for (let i = 0; i < 10; i++) roundTrip(w, 'refused', i, 'sess');
  w.message(ctxOf('refused', 'sess'), 'server_to_client', JSON.parse(huge) as JsonRpcMessage, 'json', huge.length, huge);
  for (let i = 10; i < 20; i++) roundTrip(w, 'refused', i, 'sess');
  // Without its exact text, a message too deep for JSON.stringify cannot be shaped: it is quarantined too.
  const deeper = `{"jsonrpc":"2.0","id":"deeper","method":"tools/call","params":{"arguments":${'['.repeat(200_000)}${']'.repeat(200_000)}}}`;
  w.message(ctxOf('refused', 'sess'), 'client_to_server', JSON.parse(deeper) as JsonRpcMessage, 'json', deeper.length);
  await w.close();

  const c = w.counters;
  assert.deepEqual({ captured: c.captured, written: c.written, quarantined: c.quarantined, dropped: c.dropped }, { captured: 62, written: 60, quarantined: 2, dropped: 0 });
  const docs = await messagesOf(store, 'refused');
  assert.equal(docs.length, 62);
  const quarantined = docs.filter((d) => d.quarantine);
  assert.equal(quarantined.length, 2);
  const refused = quarantined.find((d) => d.direction === 'server_to_client')!;
  assert.match(refused.quarantine!.reason, /\S/);
  assert.equal(refused.truncated, true, 'the record keeps the start of the text');
  assert.ok(huge.startsWith(refused.raw) && refused.raw.length > 0);
  assert.equal(refused.size, huge.length);
  const deep = quarantined.find((d) => d.direction === 'client_to_server')!;
  assert.match(deep.quarantine!.reason, /could not be serialised/);
  assert.equal(docs.filter((d) => !d.quarantine && d.kind === 'response').length, 20);
});

test('while MongoDB is stopped messages spill to disk; after its restart they are replayed, exactly once', async () => {
  const ferret = await startOwnFerretdb('capture-ferret');
  cleanup.push(ferret.remove);

  const own = await connectStore(ferret.uri, 'capture_outage');
  cleanup.push(() => own.close());
  await ensureIndexes(own);
  // The writer's own client gives up on a stopped server after 1 s rather than connectStore's 10 s,
  // only to keep the test short; the behaviour is the same.
  const client = new MongoClient(ferret.uri, { serverSelectionTimeoutMS: 1_000 });
  cleanup.push(() => client.close());
  const spillDir = path.join(ferret.dir, 'capture-spill');
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
  assert.ok(w.counters.buffered <= 10, 'beyond the 10-message buffer they go to the spill');
  assert.equal(w.counters.journaled, 90, 'each one in the journal when message() returned');
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

  await ferret.restart();
  for (let i = 30; i < 40; i++) roundTrip(w, 'outage', i); // 30 more once it is back

  await drain(w);
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
    const mine = docs.filter((d) => d.rpcId === i || (capturedMessage(d).params as { progressToken?: number } | undefined)?.progressToken === i);
    assert.deepEqual(mine.map((d) => d.kind).sort(), ['notification', 'request', 'response'], `round trip ${i}`);
    const res = mine.find((d) => d.kind === 'response')!;
    assert.equal(res.raw, JSON.stringify({ jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: String(i + 1) }] } }));
    assert.ok(res.at instanceof Date, 'the date survives the spill');
  }
  assert.deepEqual(readdirSync(spillDir), [], 'replayed files are removed');
});

test('the spill is bounded in bytes: beyond it messages are dropped, counted, and reported as an event', async () => {
  const spillDir = path.join(config.stateDir, 'bounded-spill');
  const nowhere = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/`, { serverSelectionTimeoutMS: 300 });
  cleanup.push(() => nowhere.close());
  const events = new EventStore(store);
  const w = new CaptureWriter({ messages: nowhere.db('nowhere').collection<MessageDoc>('messages'), spillDir, spillMaxBytes: 20_000, events, retryMs: 100 });
  for (let i = 0; i < 100; i++) roundTrip(w, 'bounded', i); // ≈ 300 documents of ≈ 400 bytes: about 50 fit
  await w.flush();
  const c = w.counters;
  assert.equal(c.captured, 300);
  assert.ok(c.spilled > 0 && c.dropped > 0, `some spilled (${c.spilled}), some dropped (${c.dropped})`);
  assert.equal(c.spilled + c.dropped, 300, 'every message is either on disk or counted as dropped');
  assert.ok(c.spillBytes <= 20_000, `${c.spillBytes} bytes on disk`);
  const onDisk = readdirSync(spillDir).reduce((s, f) => s + readFileSync(path.join(spillDir, f)).length, 0);
  assert.equal(onDisk, c.spillBytes);

  let reported = 0;
  for (let attempt = 0; attempt < 400 && reported < c.dropped; attempt++) {
    await w.flush();
    const evs = await events.list({ service: 'bounded', kind: DROP_EVENT_KIND });
    reported = evs.reduce((s, e) => s + (e.details as { count: number }).count, 0);
    if (reported < c.dropped) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(reported, c.dropped, 'the drop event says how many');
  const [event] = await events.list({ service: 'bounded', kind: DROP_EVENT_KIND });
  assert.equal(event!.status, 'failed');
  assert.ok(((event!.details as { reasons: Record<string, number> }).reasons['spill full'] ?? 0) > 0);
  await w.close();
  rmSync(spillDir, { recursive: true, force: true });
});

test('a spill left by a dead gateway is adopted and replayed; messages it finds already stored are not duplicated', async () => {
  const spillDir = path.join(config.stateDir, 'orphan-spill');
  const docs: MessageDoc[] = Array.from({ length: 10 }, (_, i) => {
    const raw = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'x', _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
    return {
      messageId: randomUUID(),
      service: 'orphan',
      version: '1.0.0',
      sessionId: 'dead-session',
      direction: 'client_to_server',
      kind: 'request',
      method: 'tools/call',
      rpcId: i,
      toolName: 'x',
      raw,
      truncated: false,
      redacted: false,
      size: raw.length,
      at: new Date(1_700_000_000_000 + i),
      transport: 'json',
    };
  });
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
