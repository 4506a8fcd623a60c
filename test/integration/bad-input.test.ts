/**
 * The bad-input suite against the real API and gateway (startApi on the test stack, a real MCP SDK
 * server upstream): fuzzed requests, deep nesting, `$` and dotted keys, huge bodies, slow clients,
 * floods, cross-site requests and path tricks. Each must get a clear error; nothing crashes, and
 * what is valid passes and is captured exactly. Case counts are printed for the README.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http, { type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { z } from 'zod';
import { startApi, type ApiHandle } from '../../api/server.ts';
import type { Config } from '../../core/config.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { weightListOf } from '../../core/routing.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { serveStatelessMcp } from '../support/stateless-mcp.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'echo';
const VERSION = '1.0.0';
const MAX_STREAMS = 8;
const HTTP_RUNS = 300;
const JSON_SSE = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

let config: Config;
let store: Store;
let api: ApiHandle;
let upstream: Server;
let connection: Connection;
let port = 0;
const counts: Record<string, number> = {};
const count = (what: string, n = 1) => void (counts[what] = (counts[what] ?? 0) + n);

/** A stateless SDK server whose `echo` returns its `value` as JSON text: what goes in must come out. */
async function startEcho(): Promise<{ server: Server; url: string }> {
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  serveStatelessMcp(app, '/mcp', () => {
    const server = new McpServer({ name: 'echo', version: VERSION });
    server.registerTool('echo', { description: 'Echoes value.', inputSchema: { value: z.any() } }, async ({ value }) => ({ content: [{ type: 'text', text: JSON.stringify(value) }] }));
    return server;
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` };
}

before(async () => {
  port = await freePort();
  config = testConfig({ MCPSHIP_API_PORT: String(port), MCPSHIP_MAX_EVENT_STREAMS: String(MAX_STREAMS) });
  const { mongoUri, temporalAddress } = stackAddresses();
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
  const echo = await startEcho();
  upstream = echo.server;
  await store.instances.insertOne({ instanceId: 'echo-a', service: SERVICE, version: VERSION, url: echo.url, state: 'ready', restarts: 0, updatedAt: new Date() });
  await store.routing.insertOne({ service: SERVICE, stable: VERSION, weights: {}, weightList: weightListOf({ [VERSION]: 100 }), pulled: [], updatedAt: new Date() });
  const now = new Date();
  await store.versions.insertOne({ service: SERVICE, version: VERSION, state: 'ACTIVE', hash: 'h', files: [], steps: [], tools: {}, createdAt: now, updatedAt: now, history: [{ state: 'ACTIVE', at: now }] });
  connection = await Connection.connect({ address: temporalAddress });
  api = await startApi({
    config,
    store,
    events: new EventStore(store),
    log: createLogger('silent'),
    temporalAddress,
    temporal: new TemporalClient({ connection, namespace: config.temporal.namespace }),
  });
});

after(async () => {
  console.log(`bad-input cases: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  await api?.close();
  await new Promise<void>((resolve) => {
    upstream?.close(() => resolve());
    upstream?.closeAllConnections();
  });
  await connection?.close();
  await store?.db.dropDatabase().catch(() => {});
  await store?.close();
});

const mcpUrl = () => `${api.url}/mcp/${SERVICE}`;

/** A request exactly as written (fetch normalises paths and refuses to set Host). */
function raw(method: string, reqPath: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: reqPath, method, headers: { host: `127.0.0.1:${port}`, ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      // An SSE stream that was let in never ends by itself: its head is the answer.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
      }
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC error of a gateway refusal. */
function rpcError(body: string): { code: number; message: string } {
  const parsed = JSON.parse(body) as { jsonrpc?: string; error?: { code: number; message: string } };
  assert.equal(parsed.jsonrpc, '2.0', body);
  assert.ok(parsed.error && Number.isInteger(parsed.error.code) && parsed.error.message, body);
  return parsed.error;
}

/** The API's error shape: { error: { code, message } }. */
function apiError(body: string): { code: string; message: string } {
  const parsed = JSON.parse(body) as { error?: { code: string; message: string } };
  assert.ok(parsed.error && typeof parsed.error.code === 'string' && parsed.error.message, body);
  return parsed.error;
}

/** tools/call echo with `value` given as JSON text, sent as built (JSON.stringify cannot nest 10,000 deep). */
async function callEcho(valueJson: string, extraParams = ''): Promise<{ status: number; body: string; sent: string; id: string }> {
  const id = randomUUID();
  const sent = `{"jsonrpc":"2.0","id":"${id}","method":"tools/call","params":{"name":"echo","arguments":{"value":${valueJson}}${extraParams}}}`;
  const res = await fetch(mcpUrl(), { method: 'POST', headers: { ...JSON_SSE, 'mcp-protocol-version': '2025-11-25' }, body: sent });
  return { status: res.status, body: await res.text(), sent, id };
}

/** The captured copy of the request with this id, once the capture has written it. */
function captured(id: string) {
  return waitFor('the request to be captured', async () => {
    const docs = await store.messages.find({ service: SERVICE, method: 'tools/call', direction: 'client_to_server' }).toArray();
    return docs.find((d) => d.rpcId === id);
  });
}

/** Proof that the server still serves: a real SDK client's call through the gateway, and the API. */
async function stillServing(): Promise<void> {
  const client = new Client({ name: 'bad-input', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl())));
  const result = await client.callTool({ name: 'echo', arguments: { value: 'alive' } });
  assert.deepEqual(result.content, [{ type: 'text', text: '"alive"' }]);
  await client.close();
  assert.equal((await fetch(`${api.url}/api/health`)).status, 200);
}

const headerValue = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 64 });
const jsonRpcish = fc.oneof(
  fc.record({ jsonrpc: fc.constantFrom('2.0', '1.0'), id: fc.oneof(fc.integer(), fc.string(), fc.constant(null)), method: fc.oneof(fc.string(), fc.constantFrom('tools/call', 'tools/list', 'initialize', 'ping', 'server/discover')), params: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] }),
  fc.jsonValue({ maxDepth: 3 }),
);

test('fuzzed POST bodies and headers: a JSON-RPC answer or a clear JSON-RPC error, never a 500 or a crash', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        body: fc.oneof(fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)), jsonRpcish.map((v) => JSON.stringify(v) ?? ''), fc.array(jsonRpcish, { maxLength: 3 }).map((v) => JSON.stringify(v))),
        sessionId: fc.option(headerValue, { nil: undefined }),
        protocolVersion: fc.option(fc.oneof(headerValue, fc.constantFrom('2025-03-26', '2025-11-25', '2026-07-28')), { nil: undefined }),
        contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', ''),
      }),
      async ({ body, sessionId, protocolVersion, contentType }) => {
        count('fuzzed HTTP requests');
        const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
        if (contentType) headers['content-type'] = contentType;
        if (sessionId) headers['mcp-session-id'] = sessionId;
        if (protocolVersion) headers['mcp-protocol-version'] = protocolVersion;
        const res = await raw('POST', `/mcp/${SERVICE}`, headers, body);
        assert.ok(res.status < 500 || res.status === 502 || res.status === 504, `status ${res.status}: ${res.body.slice(0, 300)}`);
        if (res.status >= 400) rpcError(res.body);
        else if (res.body && String(res.headers['content-type']).includes('json')) assert.doesNotThrow(() => JSON.parse(res.body));
      },
    ),
    { numRuns: HTTP_RUNS },
  );
  await stillServing();
});

test('10,000 levels of nesting: passed through and answered, or refused clearly; the API refuses it as a body too', async () => {
  const depth = 10_000;
  const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const res = await callEcho(deep);
  count('deep-nesting requests');
  assert.ok(res.status < 500, `status ${res.status}: ${res.body.slice(0, 300)}`);
  const answer = JSON.parse(res.body) as { result?: { content: { text: string }[]; isError?: boolean }; error?: unknown };
  // The upstream may fail to echo it (its own stack); the gateway must pass it and the answer back.
  if (answer.result && !answer.result.isError) assert.equal(answer.result.content[0]!.text, deep, 'the nesting came back whole');
  else if (!answer.result) rpcError(res.body);
  assert.equal((await captured(res.id)).raw, res.sent, 'captured whole');
  const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const apiRes = await raw('POST', `/api/services/${SERVICE}/rollback`, { 'content-type': 'application/json' }, `{"version":${objects}}`);
  count('deep-nesting requests');
  assert.ok(apiRes.status >= 400 && apiRes.status < 500, `status ${apiRes.status}`);
  apiError(apiRes.body);
  await stillServing();
});

test('$ and dotted keys pass through the gateway unchanged and are captured byte for byte', async () => {
  const value = { $schema: 'https://json-schema.org/draft/2020-12/schema', 'a.b': { $ref: '#/x', 'c.d.e': [1, { $: null }] } };
  const meta = { 'io.modelcontextprotocol/related-task': { taskId: 't.1' }, 'x.y': '$z' };
  const res = await callEcho(JSON.stringify(value), `,"_meta":${JSON.stringify(meta)}`);
  count('$/dotted-key requests');
  assert.equal(res.status, 200, res.body);
  const answer = JSON.parse(res.body) as { result: { content: { text: string }[] } };
  assert.deepEqual(JSON.parse(answer.result.content[0]!.text), value);
  assert.equal((await captured(res.id)).raw, res.sent, 'the capture holds the exact bytes');
});

test('bodies of 10 MB: 413 with a JSON-RPC error on /mcp, 413 with an API error on /api; the server goes on', async () => {
  const big = Buffer.alloc(10 * 1024 * 1024, 'a');
  const body = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"value":"'), big, Buffer.from('"}}}')]);
  const res = await raw('POST', `/mcp/${SERVICE}`, JSON_SSE, body).catch((err: NodeJS.ErrnoException) => ({ status: 0, headers: {}, body: err.code ?? '' }));
  assert.equal(res.status, 413, res.body.slice(0, 200));
  assert.match(rpcError(res.body).message, /larger than/);
  const apiRes = await raw('POST', `/api/services/${SERVICE}/rollback`, { 'content-type': 'application/json' }, body).catch((err: NodeJS.ErrnoException) => ({ status: 0, headers: {}, body: err.code ?? '' }));
  assert.equal(apiRes.status, 413, apiRes.body.slice(0, 200));
  apiError(apiRes.body);
  count('10 MB bodies', 2);
  await stillServing();
});

/** A client that sends its request a byte at a time and never finishes; resolves when the server hangs up. */
function trickle(request: string, body?: string): { closed: Promise<void>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let timer: NodeJS.Timeout;
  socket.on('connect', () => {
    socket.write(request);
    let i = 0;
    timer = setInterval(() => socket.write(body ? body[i++ % body.length]! : `X-Slow-${i++}: 1\r\n`), 1_000);
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => (clearInterval(timer), resolve())));
  return { closed, socket };
}

test('slow clients (headers or body trickled, on /mcp and the event stream) are cut off by the server without holding up others', async () => {
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const slow = [
    ...Array.from({ length: 10 }, () => trickle(`POST /mcp/${SERVICE} HTTP/1.1\r\n${host}`)),
    ...Array.from({ length: 10 }, () => trickle(`POST /mcp/${SERVICE} HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n`, '{"jsonrpc":"2.0"')),
    ...Array.from({ length: 10 }, () => trickle(`GET /api/events/stream HTTP/1.1\r\n${host}`)),
  ];
  count('slow clients', slow.length);
  // Others are served meanwhile.
  for (let i = 0; i < 5; i++) await stillServing();
  // Node's defaults wait 60 s for headers and 300 s for a whole request; a server that faces clients bounds both.
  assert.ok(api.server.headersTimeout <= 20_000, `headersTimeout is ${api.server.headersTimeout} ms`);
  assert.ok(api.server.requestTimeout > 0 && api.server.requestTimeout <= 60_000, `requestTimeout is ${api.server.requestTimeout} ms`);
  await Promise.all(slow.map((s) => s.closed));
  await stillServing();
});

test('floods of unknown services and unknown sessions: each a 404 with a clear JSON-RPC error, bounded memory', async () => {
  const names = Array.from({ length: 500 }, (_, i) => `ghost-${i}-${randomUUID().slice(0, 8)}`);
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'flood', version: '0' } } });
  const sessionsBefore = api.traffic.gateway.sessions.size;
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(
      names.slice(i, i + 25).map(async (name) => {
        const res = await raw('POST', `/mcp/${name}`, JSON_SSE, init);
        assert.equal(res.status, 404);
        assert.match(rpcError(res.body).message, /Unknown service/);
      }),
    );
  }
  count('unknown-service requests', names.length);
  assert.ok(api.traffic.gateway.cache.unknownCount <= names.length, 'unknown names are remembered, boundedly');
  const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  for (let i = 0; i < 500; i += 25) {
    await Promise.all(
      Array.from({ length: 25 }, async () => {
        const res = await raw('POST', `/mcp/${SERVICE}`, { ...JSON_SSE, 'mcp-session-id': randomUUID(), 'mcp-protocol-version': '2025-11-25' }, list);
        assert.equal(res.status, 404);
        assert.match(rpcError(res.body).message, /Session not found/);
      }),
    );
  }
  count('unknown-session requests', 500);
  assert.equal(api.traffic.gateway.sessions.size, sessionsBefore, 'unknown session ids are not remembered');
  await stillServing();
});

test(`a flood of event-stream subscribers: ${MAX_STREAMS} served, the rest 503 with a clear error, and the places come back`, async () => {
  const opened: http.ClientRequest[] = [];
  const open = () =>
    new Promise<{ status: number; body: string; retryAfter?: string }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/events/stream', agent: false }, (res) => {
        if (res.statusCode === 200) return resolve({ status: 200, body: '' });
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}) }));
      });
      req.on('error', reject);
      opened.push(req);
    });
  const results = [];
  for (let i = 0; i < MAX_STREAMS + 20; i++) results.push(await open());
  count('event-stream subscribers', results.length);
  assert.equal(results.filter((r) => r.status === 200).length, MAX_STREAMS);
  const refused = results.filter((r) => r.status !== 200);
  assert.ok(refused.every((r) => r.status === 503), `statuses ${refused.map((r) => r.status)}`);
  assert.match(apiError(refused[0]!.body).message, /stream/i);
  for (const req of opened) req.destroy();
  await waitFor('a new subscriber to be let in once the others left', async () => {
    const r = await open();
    opened.at(-1)!.destroy();
    return r.status === 200;
  });
});

test('cross-site requests: forms and simple content types cannot change state, foreign origins and hosts (DNS rebinding) are refused', async () => {
  const archive = `/api/services/${SERVICE}/versions/${VERSION}/archive`;
  const simple = ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', ''];
  for (const type of simple) {
    const res = await raw('POST', archive, type ? { 'content-type': type } : {}, type.startsWith('multipart') ? '--x--' : 'a=1');
    assert.equal(res.status, 415, `${type || 'no content type'}: ${res.status} ${res.body}`);
    apiError(res.body);
  }
  const foreign: Record<string, string>[] = [
    { origin: 'http://evil.example' },
    { origin: 'null' },
    { host: 'evil.example' },
    { host: `evil.example:${port}` },
    { host: `127.0.0.1.evil.example:${port}` },
  ];
  for (const headers of foreign) {
    for (const [method, p] of [['POST', archive], ['GET', '/api/services'], ['GET', '/api/events/stream'], ['POST', `/mcp/${SERVICE}`]] as const) {
      const res = await raw(method, p, { 'content-type': 'application/json', ...headers }, method === 'POST' ? '{}' : undefined);
      assert.equal(res.status, 403, `${method} ${p} with ${JSON.stringify(headers)}: ${res.status} ${res.body.slice(0, 200)}`);
      if (p.startsWith('/mcp')) rpcError(res.body);
      else apiError(res.body);
    }
  }
  count('cross-site requests', simple.length + foreign.length * 4);
  assert.equal((await store.versions.findOne({ service: SERVICE, version: VERSION }))?.state, 'ACTIVE', 'nothing was archived');
  const own = await raw('GET', '/api/services', { origin: `http://127.0.0.1:${port}` });
  assert.equal(own.status, 200, 'the server\'s own loopback origin is let in');
});

test('path tricks in service and version names, on every route that takes one: 400 or 404 with a clear error, nothing touched', async () => {
  const badNames = ['..', '%2e%2e', '.', '..%2f..%2fetc', 'a%2Fb', '%2F', 'a%00b', '%00', 'Echo', 'ech%C3%B6', '-echo', 'a'.repeat(64), 'x'.repeat(10_000), '%252e%252e', 'echo%20', '~root'];
  const badVersions = ['..', '%2e%2e', '1.0.0%2F..%2F..', '1.0', '01.0.0', '1.0.0-rc.1', '1.0.0%00', 'latest', '9'.repeat(5_000)];
  const routes: [string, string, string?][] = [];
  for (const n of badNames) {
    routes.push(
      ['GET', `/api/services/${n}`],
      ['GET', `/api/services/${n}/versions`],
      ['GET', `/api/services/${n}/versions/${VERSION}`],
      ['POST', `/api/services/${n}/versions/${VERSION}/archive`, '{}'],
      ['POST', `/api/services/${n}/versions/${VERSION}/restore`, '{}'],
      ['GET', `/api/services/${n}/deployment`],
      ['POST', `/api/services/${n}/deploy`, `{"version":"${VERSION}"}`],
      ['POST', `/api/services/${n}/rollback`, '{}'],
      ['POST', `/api/services/${n}/pause`, '{}'],
      ['POST', `/api/services/${n}/set-weight`, '{"weight":50}'],
      ['GET', `/api/routing/${n}`],
      ['GET', `/api/health/${n}`],
      ['GET', `/api/events?service=${n}`],
      ['POST', `/mcp/${n}`, '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'],
    );
  }
  for (const v of badVersions) {
    routes.push(
      ['GET', `/api/services/${SERVICE}/versions/${v}`],
      ['POST', `/api/services/${SERVICE}/versions/${v}/archive`, '{}'],
      ['POST', `/api/services/${SERVICE}/versions/${v}/restore`, '{}'],
      ['POST', `/api/services/${SERVICE}/deploy`, JSON.stringify({ version: decodeURIComponent(v.replace(/%00/g, '%2500')) })],
      ['POST', `/api/services/${SERVICE}/rollback`, JSON.stringify({ version: decodeURIComponent(v.replace(/%00/g, '%2500')) })],
    );
  }
  routes.push(['POST', `/api/services/${SERVICE}/deploy`, '{"version":"1.0.0\\u0000"}'], ['POST', `/api/services/${SERVICE}/deploy`, '{"version":["1.0.0"]}'], ['POST', `/api/services/${SERVICE}/deploy`, '{}']);
  for (const [method, p, body] of routes) {
    const res = await raw(method, p, body ? { 'content-type': 'application/json' } : {}, body);
    assert.ok(res.status === 400 || res.status === 404, `${method} ${p.slice(0, 120)}: ${res.status} ${res.body.slice(0, 200)}`);
    if (p.startsWith('/mcp')) rpcError(res.body);
    else apiError(res.body);
  }
  count('path-trick requests', routes.length);
  assert.equal((await store.versions.findOne({ service: SERVICE, version: VERSION }))?.state, 'ACTIVE', 'nothing was archived');
  await sleep(0);
  await stillServing();
});
