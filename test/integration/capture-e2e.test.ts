/**
 * Capture end to end: real MCP traffic from the SDK's client through startApi (the gateway as
 * `mcpship up` runs it) to the real `everything` sample server. The client records every JSON-RPC
 * message it sends and receives, on the wire; the test then asserts one stored document per
 * message (request, response, notification, SSE event), with the same text, rpc id and session,
 * redacted and capped as configured. The second test does the same while the capture database is
 * stopped: the spill keeps everything and is loaded, without duplicates, once it is back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as StatelessClient, StreamableHTTPClientTransport as StatelessTransport } from '@modelcontextprotocol/client';
import { MongoClient } from 'mongodb';
import { REDACTED } from '../../api/gateway/capture/redact.ts';
import { jsonArrayItems } from '../../api/gateway/json-text.ts';
import { SseParser } from '../../api/gateway/response-tap.ts';
import { startApi, type ApiHandle } from '../../api/server.ts';
import type { Config } from '../../core/config.ts';
import { capturedMessage, type MessageDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { setRouting } from '../../core/routing-store.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { startEverythingSample } from '../support/everything-sample.ts';
import { startOwnFerretdb } from '../support/own-ferretdb.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'everything';
const MAX_PAYLOAD = 4096;
const { mongoUri, temporalAddress } = stackAddresses();
const cleanup: (() => Promise<unknown> | unknown)[] = [];
let sampleUrl: string;

after(async () => {
  for (const step of cleanup.reverse()) await step();
});

before(async () => {
  const sample = await startEverythingSample();
  sampleUrl = sample.url;
  cleanup.push(sample.stop);
});

/** One JSON-RPC message as the client saw it on the wire. */
interface Seen {
  direction: MessageDoc['direction'];
  raw: string;
  sessionId: string | undefined;
  transport: 'json' | 'sse';
}

/** A fetch for the SDK transport that records every message both ways, from the bytes themselves. */
function recordingFetch(seen: Seen[], reading: Promise<void>[]) {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    const sessionId = res.headers.get('mcp-session-id') ?? new Headers(init?.headers).get('mcp-session-id') ?? undefined;
    if (init?.method === 'POST' && typeof init.body === 'string') {
      const body = init.body;
      const raws = body.trimStart().startsWith('[') ? jsonArrayItems(body) : [body];
      for (const raw of raws) seen.push({ direction: 'client_to_server', raw, sessionId, transport: 'json' });
    }
    const type = res.headers.get('content-type') ?? '';
    if (res.body && (type.startsWith('text/event-stream') || type.startsWith('application/json'))) {
      const copy = res.clone();
      reading.push(
        (async () => {
          if (type.startsWith('application/json')) {
            const text = await copy.text();
            if (text.trim() === '') return;
            const raws = text.trimStart().startsWith('[') ? jsonArrayItems(text) : [text];
            for (const raw of raws) seen.push({ direction: 'server_to_client', raw, sessionId, transport: 'json' });
            return;
          }
          const parser = new SseParser();
          const take = (events: { event: string; data: string }[]) => {
            for (const e of events) if (e.event === 'message' && e.data !== '') seen.push({ direction: 'server_to_client', raw: e.data, sessionId, transport: 'sse' });
          };
          try {
            for await (const chunk of copy.body as unknown as AsyncIterable<Uint8Array>) take(parser.push(chunk));
          } catch {
            // The stream was cut (the session ended): what arrived is recorded.
          }
          take(parser.end());
        })(),
      );
    }
    return res;
  };
}

interface Traffic {
  seen: Seen[];
  sessionId: string;
}

/** A 2025-11-25 session exercising the sample: tools/list ($schema), images, progress and logging over SSE, a list-changed notification on the GET stream, a secret to redact, a 10,000-deep body. */
async function drive(url: string): Promise<Traffic> {
  const seen: Seen[] = [];
  const reading: Promise<void>[] = [];
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch(seen, reading) });
  const client = new Client({ name: 'capture-e2e', version: '1.0.0' });
  client.onerror = () => {};
  let listChanged = 0;
  client.setNotificationHandler((await import('@modelcontextprotocol/sdk/types.js')).ToolListChangedNotificationSchema, async () => {
    listChanged++;
  });
  await client.connect(transport);
  const sessionId = transport.sessionId!;
  assert.ok(sessionId, 'a session');
  const tools = await client.listTools();
  assert.ok(tools.tools.length > 10);
  const image = await client.callTool({ name: 'test_image_content', arguments: {} });
  assert.equal((image.content as { type: string }[])[0]!.type, 'image');
  await client.callTool({ name: 'test_simple_text', arguments: { PassWord: 'hunter2', note: 'private', other: 'kept' } });
  let progress = 0;
  await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, { onprogress: () => void progress++ });
  assert.ok(progress > 0, 'progress notifications came');
  await client.setLoggingLevel('info');
  await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
  await client.callTool({ name: 'test_error_handling', arguments: {} });
  // A change announced on the session's GET stream.
  await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
  await waitFor('the list-changed notification', () => listChanged > 0, 120_000, 50);
  // A 10,000-deep body the SDK cannot even serialise: sent by hand on the same session.
  const deep = `{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{"name":"test_simple_text","arguments":{"deep":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`;
  const deepRes = await recordingFetch(seen, reading)(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: deep,
  });
  await deepRes.text();
  assert.ok(deepRes.status < 500 || deepRes.status === 500, 'the gateway answered');
  // And the session still works after it.
  await client.callTool({ name: 'test_simple_text', arguments: {} });
  await transport.terminateSession();
  await client.close();
  await Promise.all(reading);
  return { seen, sessionId };
}

async function configFor(): Promise<Config> {
  return testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_CAPTURE_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD), MCPSHIP_CAPTURE_REDACT: 'params.arguments.note' });
}

/** The test file's database on the stack, dropped after the file. */
async function storeFor(config: Config): Promise<Store> {
  const store = await connectStore(mongoUri, config.mongo.database);
  cleanup.push(async () => {
    await store.db.dropDatabase();
    await store.close();
  });
  await ensureIndexes(store);
  return store;
}

async function startGateway(config: Config, store: Store): Promise<ApiHandle> {
  await store.instances.updateOne(
    { instanceId: 'everything-1' },
    { $set: { service: SERVICE, version: '1.0.0', url: sampleUrl, state: 'ready', restarts: 0, updatedAt: new Date() }, $setOnInsert: { instanceId: 'everything-1' } },
    { upsert: true },
  );
  await setRouting(store, SERVICE, { stable: '1.0.0', weights: { '1.0.0': 100 } });
  const api = await startApi({ config, store, events: new EventStore(store), log: createLogger('warn', 'capture-e2e'), temporalAddress });
  cleanup.push(() => api.close());
  return api;
}

const SESSION_KINDS = ['client_to_server/request/json', 'client_to_server/notification/json', 'server_to_client/response/sse', 'server_to_client/notification/sse'];

/** Each message seen on the wire has exactly one document, and nothing else is stored. */
function assertOneDocumentEach(traffic: { seen: Seen[]; sessionId: string | undefined }, docs: MessageDoc[], expectKinds = SESSION_KINDS): void {
  assert.equal(docs.length, traffic.seen.length, `documents stored (${docs.length}) = messages on the wire (${traffic.seen.length})`);
  assert.equal(new Set(docs.map((d) => d.messageId)).size, docs.length, 'no duplicates');
  const left = [...docs];
  for (const s of traffic.seen) {
    const msg = JSON.parse(s.raw) as Record<string, unknown>;
    const i = left.findIndex((d) => {
      if (d.direction !== s.direction || d.transport !== s.transport) return false;
      return d.truncated ? s.raw.startsWith(d.raw) : d.raw === s.raw;
    });
    assert.ok(i >= 0, `stored: ${s.direction} ${s.raw.slice(0, 120)}`);
    const [doc] = left.splice(i, 1);
    assert.equal(doc!.sessionId, traffic.sessionId, 'the session of the exchange');
    if ('id' in msg) assert.deepEqual(doc!.rpcId, msg.id, 'the rpc id');
    if (typeof msg.method === 'string') assert.equal(doc!.method, msg.method);
    assert.equal(doc!.size, Buffer.byteLength(s.raw), 'the wire size');
    assert.equal(doc!.truncated, Buffer.byteLength(s.raw) > MAX_PAYLOAD, 'cut exactly when over the configured cap');
    if (doc!.truncated) assert.ok(Buffer.byteLength(doc!.raw) <= MAX_PAYLOAD && Buffer.byteLength(doc!.raw) > MAX_PAYLOAD - 4);
  }
  const kinds = new Set(docs.map((d) => `${d.direction}/${d.kind}/${d.transport}`));
  for (const k of expectKinds) {
    assert.ok(kinds.has(k), `traffic included ${k}`);
  }
}

function assertRedacted(docs: MessageDoc[]): void {
  const call = docs.find((d) => d.direction === 'client_to_server' && d.raw.includes('"other":"kept"'));
  assert.ok(call, 'the call with secrets is stored');
  assert.equal(call.redacted, true);
  assert.ok(!call.raw.includes('hunter2') && !call.raw.includes('private'));
  assert.deepEqual((capturedMessage(call).params as { arguments: unknown }).arguments, { PassWord: REDACTED, note: REDACTED, other: 'kept' });
}

test('real MCP traffic through startApi: one stored document per request, response, notification and SSE event, redacted and capped from config', async () => {
  const config = await configFor();
  const store = await storeFor(config);
  const api = await startGateway(config, store);
  const traffic = await drive(`${api.url}/mcp/${SERVICE}`);
  await api.traffic.capture!.flush();
  const docs = await store.messages.find({ service: SERVICE }, { projection: { _id: 0 } }).toArray();
  // The redacted call is matched through its other fields; set it aside for assertRedacted.
  assertRedacted(docs);
  const plain = (d: MessageDoc) => !d.redacted;
  assertOneDocumentEach({ ...traffic, seen: traffic.seen.filter((s) => !s.raw.includes('"other":"kept"')) }, docs.filter(plain));
  const c = api.traffic.capture!.counters;
  assert.deepEqual({ dropped: c.dropped, quarantined: c.quarantined, spilled: c.spilled }, { dropped: 0, quarantined: 0, spilled: 0 });
  const deep = docs.find((d) => d.rpcId === 'deep')!;
  assert.equal(deep.truncated, true, 'the deep body is over the 4 KiB cap, stored cut, and nothing broke');
  assert.ok(docs.some((d) => d.toolName === 'test_image_content' && d.direction === 'server_to_client'), 'a response carries its tool');
  assert.ok(docs.some((d) => d.method === 'tools/list' && d.direction === 'client_to_server'));
  assert.ok(docs.some((d) => d.raw.includes('"$schema"')), 'the tools/list response with $schema is stored');
});

test('with the capture database stopped during the traffic, the spill keeps everything and loads it once it is back, without duplicates', async () => {
  const config = await configFor();
  const store = await storeFor(config);

  // Captured messages go to a FerretDB of this test's own, stopped and started here; routing,
  // sessions and events stay on the test stack.
  const ferret = await startOwnFerretdb('capture-e2e');
  cleanup.push(ferret.remove);
  // Connected before the stop, as connectStore does at start (a driver whose first connect failed stays closed).
  const captureClient = await new MongoClient(ferret.uri, { serverSelectionTimeoutMS: 1_000 }).connect();
  cleanup.push(() => captureClient.close());
  const messages = captureClient.db('capture_e2e').collection<MessageDoc>('messages');
  const api = await startGateway(config, { ...store, messages });

  await ferret.stop();
  const traffic = await drive(`${api.url}/mcp/${SERVICE}`);
  const capture = api.traffic.capture!;
  await capture.flush();
  const down = capture.counters;
  assert.equal(down.written, 0, 'nothing reached the stopped database');
  assert.equal(down.spilled, traffic.seen.length, 'everything is in the spill');
  assert.equal(down.spillPending, traffic.seen.length);
  assert.equal(down.dropped, 0);

  await ferret.restart();
  await waitFor(
    'the spill loaded',
    async () => {
      await capture.flush();
      return capture.counters.spillPending === 0;
    },
    120_000,
    50,
  );
  const up = capture.counters;
  assert.equal(up.replayed, traffic.seen.length);
  assert.equal(up.dropped, 0);
  const docs = await messages.find({ service: SERVICE }, { projection: { _id: 0 } }).toArray();
  assertRedacted(docs);
  assertOneDocumentEach({ ...traffic, seen: traffic.seen.filter((s) => !s.raw.includes('"other":"kept"')) }, docs.filter((d) => !d.redacted));
});

test('stateless 2026-07-28 traffic (SDK v2 client, no session): one document per message, byte-identical, with its protocol revision', async () => {
  const config = await configFor();
  const store = await storeFor(config);
  const api = await startGateway(config, store);
  const seen: Seen[] = [];
  const reading: Promise<void>[] = [];
  const transport = new StatelessTransport(new URL(`${api.url}/mcp/${SERVICE}`), { fetch: recordingFetch(seen, reading) });
  const client = new StatelessClient({ name: 'capture-e2e-2026', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2026-07-28');
  assert.equal(transport.sessionId, undefined);
  const tools = await client.listTools();
  assert.ok(tools.tools.length > 10);
  await client.callTool({ name: 'test_image_content', arguments: {} });
  await client.callTool({ name: 'test_simple_text', arguments: { PassWord: 'hunter2', note: 'private', other: 'kept' } });
  await client.callTool({ name: 'test_error_handling', arguments: {} });
  await client.close();
  await Promise.all(reading);
  await api.traffic.capture!.flush();

  const docs = await store.messages.find({ service: SERVICE }, { projection: { _id: 0 } }).toArray();
  assertRedacted(docs);
  const plainSeen = seen.filter((s) => !s.raw.includes('"other":"kept"'));
  assertOneDocumentEach({ seen: plainSeen, sessionId: undefined }, docs.filter((d) => !d.redacted), ['client_to_server/request/json']);
  const requests = docs.filter((d) => d.direction === 'client_to_server');
  assert.ok(requests.length >= 5);
  for (const d of requests) assert.equal(d.protocolRevision, '2026-07-28', `revision of ${d.method}`);
  assert.ok(docs.some((d) => d.raw.includes('"io.modelcontextprotocol/protocolVersion"')), 'dotted _meta keys stored as sent');
  assert.equal(api.traffic.capture!.counters.dropped, 0);
});
