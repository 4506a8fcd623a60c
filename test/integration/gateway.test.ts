/**
 * The MCP gateway against the real stack: MongoDB from the test stack, real calculator processes
 * (the sample, built once; "2.0.0" is a copy that reports another server version), a few
 * in-process MCP SDK servers where a test needs to steer the upstream (server-initiated messages,
 * a tool that never answers, a stateless server), and the SDK's real MCP client throughout.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, McpError, ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { execa, type ResultPromise } from 'execa';
import express from 'express';
import { z } from 'zod';
import { createGateway, type BreakerView, type Gateway } from '../../api/gateway/gateway.ts';
import { SseParser } from '../../api/gateway/response-tap.ts';
import type { ExchangeContext, ExchangeOutcome, TrafficObserver } from '../../api/gateway/traffic.ts';
import type { Config } from '../../core/config.ts';
import type { RoutingDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { weightListOf } from '../../core/routing.ts';
import { childEnv } from '../support/child-env.ts';
import { serveStatelessMcp } from '../support/stateless-mcp.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRATCH = path.join(ROOT, '.mcpship/tmp-test');
/** Guards against a hang, never timing assertions. */
const GUARD = { timeout: 300_000 };
const ALLOWED_ORIGIN = 'http://allowed.example';

// ------------------------------------------------------------------------------------------
// Helpers

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls until fn returns a value; the guard only stops a hang. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, guardMs = 30_000): Promise<T> {
  const deadline = performance.now() + guardMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

/** Runs fn n times with at most `width` at once. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

class Recorder implements TrafficObserver {
  messages: { ctx: ExchangeContext; direction: string; msg: Record<string, unknown>; transport: string; size: number }[] = [];
  ends: { ctx: ExchangeContext; outcome: ExchangeOutcome }[] = [];
  message(ctx: ExchangeContext, direction: string, msg: Record<string, unknown>, transport: string, size: number): void {
    this.messages.push({ ctx: { ...ctx }, direction, msg, transport, size });
  }
  exchangeEnd(ctx: ExchangeContext, outcome: ExchangeOutcome): void {
    this.ends.push({ ctx: { ...ctx }, outcome });
  }
  forSession(sessionId: string) {
    return { messages: this.messages.filter((m) => m.ctx.sessionId === sessionId), ends: this.ends.filter((e) => e.ctx.sessionId === sessionId) };
  }
}

interface Conn {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** X-Mcpship-Version of every POST response, in order. */
  served: string[];
  version: string;
  sessionId: string | undefined;
}

const openClients = new Set<Client>();

/** A real MCP client through the gateway; `force` pins the new session's version (initialize only). */
async function connect(url: string, opts: { force?: string; sessionId?: string } = {}): Promise<Conn> {
  const served: string[] = [];
  const fetchFn = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    if (opts.force && !headers.has('mcp-session-id')) headers.set('x-mcpship-version', opts.force);
    const res = await fetch(input, { ...init, headers });
    if (init?.method === 'POST') served.push(res.headers.get('x-mcpship-version') ?? '');
    return res;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: fetchFn, ...(opts.sessionId ? { sessionId: opts.sessionId } : {}) });
  const client = new Client({ name: 'gateway-test', version: '0.0.0' });
  client.onerror = () => {
    // The background GET stream ends with the session; the tests check what they expect by themselves.
  };
  await client.connect(transport);
  openClients.add(client);
  return { client, transport, served, version: client.getServerVersion()?.version ?? '', sessionId: transport.sessionId };
}

async function disconnect(conn: Conn): Promise<void> {
  openClients.delete(conn.client);
  await conn.client.close().catch(() => {});
}

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  return ((result as CallToolResult).content[0] as { text: string }).text;
}

const JSON_SSE = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** The JSON-RPC messages of a response, whether a JSON body or an SSE stream that ends. */
async function responseMessages(res: Response): Promise<Record<string, unknown>[]> {
  const body = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return body ? [JSON.parse(body)].flat() : [];
  const parser = new SseParser();
  const events = [...parser.push(Buffer.from(body)), ...parser.end()];
  return events.flatMap((e) => [JSON.parse(e.data)].flat());
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { ...JSON_SSE, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

const initializeMessage = (protocolVersion = '2025-11-25', id: number | string = 1) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw-test', version: '0' } },
});

/** initialize + initialized by hand, for what the SDK client will not send (old protocol versions, batches). */
async function rawSession(url: string, protocolVersion = '2025-11-25'): Promise<{ sessionId: string; init: Record<string, unknown> }> {
  const res = await post(url, initializeMessage(protocolVersion));
  assert.equal(res.status, 200);
  const sessionId = res.headers.get('mcp-session-id');
  assert.ok(sessionId);
  const [init] = await responseMessages(res);
  const ack = await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion });
  assert.equal(ack.status, 202);
  return { sessionId, init: init! };
}

/** A request with any Host header (fetch cannot set one). */
function rawRequest(port: number, reqPath: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: reqPath, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(app: express.Express | ReturnType<typeof createMcpExpressApp>): Promise<{ server: Server; port: number }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// ------------------------------------------------------------------------------------------
// In-process upstreams

/** A stateful SDK server whose test can push server-initiated messages and which has a tool that never answers. */
async function startStreamy() {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers = new Map<string, McpServer>();
  const seenHeaders: Record<string, string | undefined>[] = [];
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  const bySession = (req: express.Request, res: express.Response) => {
    seenHeaders.push({ 'last-event-id': req.get('last-event-id'), 'mcp-protocol-version': req.get('mcp-protocol-version'), method: req.method });
    const t = transports.get(req.get('mcp-session-id') ?? '');
    if (!t) res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    return t;
  };
  app.post('/mcp', async (req, res) => {
    if (req.get('mcp-session-id')) return bySession(req, res)?.handleRequest(req, res, req.body);
    if (!isInitializeRequest(req.body)) return void res.status(400).json({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no session' } });
    const server = new McpServer({ name: 'streamy', version: '1.0.0' });
    server.registerTool('hang', { description: 'Never answers.' }, () => new Promise<CallToolResult>(() => {}));
    server.registerTool('echo', { description: 'Echoes.', inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => {
        transports.set(sid, transport);
        servers.set(sid, server);
      },
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get('/mcp', (req, res) => void bySession(req, res)?.handleRequest(req, res));
  app.delete('/mcp', (req, res) => void bySession(req, res)?.handleRequest(req, res));
  const { server, port } = await listen(app);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seenHeaders,
    /** A server-initiated notification on every session's standalone GET stream. */
    notifyAll: () => {
      for (const s of servers.values()) s.sendToolListChanged();
    },
    close: async () => {
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      await closeServer(server);
    },
  };
}

/** A stateless SDK server (no Mcp-Session-Id, JSON responses) that says which version it is. */
/**
 * With resetReused, a connection is reset when a second request arrives on it: what a gateway's
 * kept-alive socket meets when the instance closed it as idle just as the request went out.
 */
async function startStateless(version: string, opts: { resetReused?: boolean } = {}) {
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  const requestsOn = new WeakMap<net.Socket, number>();
  let resets = 0;
  app.use((req, _res, next) => {
    const n = (requestsOn.get(req.socket) ?? 0) + 1;
    requestsOn.set(req.socket, n);
    if (opts.resetReused && n > 1) {
      resets += 1;
      req.socket.resetAndDestroy();
      return;
    }
    next();
  });
  serveStatelessMcp(app, '/mcp', () => {
    const server = new McpServer({ name: 'stateless', version });
    server.registerTool('whoami', { description: 'The server version.' }, async () => ({ content: [{ type: 'text', text: version }] }));
    return server;
  });
  app.get('/mcp', (_req, res) => void res.status(405).set('Allow', 'POST').end());
  const { server, port } = await listen(app);
  return { url: `http://127.0.0.1:${port}/mcp`, close: () => closeServer(server), resets: () => resets };
}

/** Accepts connections and never answers. */
async function startBlackhole() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ------------------------------------------------------------------------------------------
// The stack under test

let config: Config;
let store: Store;
let workDir = '';
let v1Dir = '';
const log = createLogger('error', 'gateway-test');
const children: ResultPromise[] = [];
const cleanups: (() => Promise<void>)[] = [];
/** instanceId → url of the calculator processes. */
const calc: Record<string, string> = {};

interface RunningGateway {
  gateway: Gateway;
  recorder: Recorder;
  port: number;
  url: (service: string) => string;
}

/** Serves the gateway's router under /mcp on a free port until the file's cleanup; returns the port. */
async function serveGateway(gateway: Gateway): Promise<number> {
  const app = express();
  app.use('/mcp', gateway.router);
  const { server, port } = await listen(app);
  cleanups.push(async () => {
    await gateway.close();
    await closeServer(server);
  });
  return port;
}

async function startGateway(opts: { config?: Config; breaker?: BreakerView } = {}): Promise<RunningGateway> {
  const recorder = new Recorder();
  const gateway = createGateway({ config: opts.config ?? config, store, log, events: new EventStore(store), observer: recorder, ...(opts.breaker ? { breaker: opts.breaker } : {}) });
  const port = await serveGateway(gateway);
  return { gateway, recorder, port, url: (service) => `http://127.0.0.1:${port}/mcp/${service}` };
}

async function startCalculator(dir: string): Promise<string> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/mcp`;
  const child = execa('node', ['dist/index.js'], { cwd: dir, env: childEnv({ PORT: String(port) }), extendEnv: false, reject: false, stdin: 'ignore', all: true });
  children.push(child);
  await until(`calculator on ${port}`, async () => {
    assert.equal(child.exitCode, null, 'the calculator exited before it was ready');
    return fetch(url, { headers: { accept: 'text/event-stream' } }).then(
      (res) => res.status,
      () => undefined,
    );
  });
  return url;
}

async function addInstance(service: string, version: string, instanceId: string, url: string, state: 'ready' | 'draining' = 'ready'): Promise<void> {
  await store.instances.updateOne(
    { instanceId },
    { $set: { service, version, url, state, restarts: 0, updatedAt: new Date() }, $setOnInsert: { instanceId } },
    { upsert: true },
  );
}

async function setRouting(service: string, doc: Pick<RoutingDoc, 'weights' | 'pulled'> & { stable?: string }, ...gateways: RunningGateway[]): Promise<void> {
  // The list form: FerretDB refuses '.' in field names, so a map keyed by version cannot be stored.
  await store.routing.replaceOne({ service }, { service, ...doc, weights: {}, weightList: weightListOf(doc.weights), updatedAt: new Date() }, { upsert: true });
  for (const g of gateways) g.gateway.cache.invalidate(service);
}

const CANARY_90_10 = { stable: '1.0.0', weights: { '1.0.0': 90, '2.0.0': 10 }, pulled: [] };

let A: RunningGateway;
let streamy: Awaited<ReturnType<typeof startStreamy>>;

before(async () => {
  config = testConfig({ MCPSHIP_ALLOWED_ORIGINS: ALLOWED_ORIGIN });
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);

  await mkdir(SCRATCH, { recursive: true });
  workDir = await mkdtemp(path.join(SCRATCH, 'gateway-'));
  const v1 = (v1Dir = path.join(workDir, 'calculator-1.0.0'));
  await cp(path.join(ROOT, 'examples/services/calculator'), v1, { recursive: true, filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)) });
  const build = await execa('npm', ['run', 'build'], { cwd: v1, env: childEnv({}), extendEnv: false, reject: false, all: true });
  assert.equal(build.exitCode, 0, build.all);
  // Version 2.0.0: the same build, telling clients another server version in initialize.
  const v2 = path.join(workDir, 'calculator-2.0.0');
  await cp(v1, v2, { recursive: true });
  const serverJs = path.join(v2, 'dist/server.js');
  const source = await readFile(serverJs, 'utf8');
  assert.ok(source.includes("version: '1.0.0'"));
  await writeFile(serverJs, source.replace("version: '1.0.0'", "version: '2.0.0'"));

  const [a, b, c] = await Promise.all([startCalculator(v1), startCalculator(v1), startCalculator(v2)]);
  Object.assign(calc, { 'calc-1.0.0-a': a!, 'calc-1.0.0-b': b!, 'calc-2.0.0-a': c! });
  await addInstance('calc', '1.0.0', 'calc-1.0.0-a', a!);
  await addInstance('calc', '1.0.0', 'calc-1.0.0-b', b!);
  await addInstance('calc', '2.0.0', 'calc-2.0.0-a', c!);
  // An instance the runner reports as not ready gets no traffic.
  await addInstance('calc', '2.0.0', 'calc-2.0.0-draining', 'http://127.0.0.1:9/mcp', 'draining');
  await setRouting('calc', CANARY_90_10);

  streamy = await startStreamy();
  cleanups.push(() => streamy.close());
  await addInstance('streamy', '1.0.0', 'streamy-a', streamy.url);
  await setRouting('streamy', { stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [] });

  A = await startGateway();
});

after(async () => {
  await Promise.allSettled([...openClients].map((c) => c.close()));
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.allSettled(children);
  if (store) {
    await store.db.dropDatabase().catch(() => {});
    await store.close();
  }
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------

describe('session-sticky weighted routing', GUARD, () => {
  test('weights 90/10 over 500 new sessions: the canary share is within 4 standard deviations; sessions spread over instances', async () => {
    await setRouting('calc', CANARY_90_10, A);
    const N = 500;
    const seen: { sessionId: string; version: string }[] = [];
    await pool(N, 10, async () => {
      const conn = await connect(A.url('calc'));
      assert.ok(conn.sessionId);
      seen.push({ sessionId: conn.sessionId, version: conn.version });
      await disconnect(conn);
    });
    const canary = seen.filter((s) => s.version === '2.0.0').length;
    assert.equal(seen.filter((s) => s.version === '1.0.0').length + canary, N, 'every session is on one of the two versions');
    // The canary count is Binomial(500, 0.1): mean 50, sd sqrt(500 * 0.1 * 0.9) = 6.71. Four sd
    // (26.8) either side gives 24..76 sessions, a share of 4.8%..15.2%; a correct gateway falls
    // outside with probability about 6e-5.
    const sd = Math.sqrt(N * 0.1 * 0.9);
    console.log(`canary sessions: ${canary}/${N} (${((canary / N) * 100).toFixed(1)}%, expected 50 ± ${(4 * sd).toFixed(1)})`);
    assert.ok(Math.abs(canary - 50) <= 4 * sd, `canary got ${canary} of ${N} sessions`);

    // The session table in MongoDB holds every session, on the version its server answered from.
    const docs = await store.sessions.find({ _id: { $in: seen.map((s) => s.sessionId) } }).toArray();
    assert.equal(docs.length, N);
    const reported = new Map(seen.map((s) => [s.sessionId, s.version]));
    for (const d of docs) assert.equal(d.version, reported.get(d._id), d._id);
    // Round robin: the two 1.0.0 instances got new sessions in turn; the draining one got none.
    const perInstance = (id: string) => docs.filter((d) => d.instanceId === id).length;
    assert.ok(Math.abs(perInstance('calc-1.0.0-a') - perInstance('calc-1.0.0-b')) <= 1, `${perInstance('calc-1.0.0-a')} vs ${perInstance('calc-1.0.0-b')}`);
    assert.equal(perInstance('calc-2.0.0-draining'), 0);
    assert.equal(perInstance('calc-2.0.0-a'), canary);
  });

  test('a new session is recorded in one write holding the negotiated protocol version, before the client has its id', async () => {
    // Two writes to a new session document collided on FerretDB under load (SQLITE_BUSY).
    const writes: unknown[] = [];
    const sessions = new Proxy(store.sessions, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        if (prop !== 'updateOne' && prop !== 'insertOne') return value.bind(target);
        return (filterOrDoc: { _id?: unknown }, ...rest: unknown[]) => {
          writes.push(filterOrDoc._id);
          return (value as (...a: unknown[]) => unknown).call(target, filterOrDoc, ...rest);
        };
      },
    });
    const port = await serveGateway(createGateway({ config, store: { ...store, sessions }, log }));
    // streamy answers initialize as an SSE stream, the calculator as JSON.
    for (const service of ['streamy', 'calc']) {
      const res = await post(`http://127.0.0.1:${port}/mcp/${service}`, initializeMessage('2025-06-18'));
      assert.equal(res.status, 200);
      const sessionId = res.headers.get('mcp-session-id');
      assert.ok(sessionId);
      const doc = await store.sessions.findOne({ _id: sessionId });
      assert.equal(doc?.protocolVersion, '2025-06-18', `${service}: the version is saved when the client learns the id`);
      const [init] = await responseMessages(res);
      assert.equal((init?.result as { protocolVersion?: string } | undefined)?.protocolVersion, '2025-06-18', `${service}: the answer passed whole`);
      assert.equal(writes.filter((w) => w === sessionId).length, 1, `${service}: one write for a new session`);
    }
  });

  test('one session stays on its version over 50 calls, and the capture hook sees every message both ways', async () => {
    await setRouting('calc', CANARY_90_10, A);
    const conn = await connect(A.url('calc'), { force: '2.0.0' });
    assert.equal(conn.version, '2.0.0');
    for (let i = 0; i < 50; i++) {
      assert.equal(text(await conn.client.callTool({ name: 'add', arguments: { a: i, b: 1 } })), String(i + 1));
    }
    const byZero = await conn.client.callTool({ name: 'divide', arguments: { a: 1, b: 0 } });
    assert.equal(byZero.isError, true);
    assert.ok(conn.served.length >= 52);
    assert.deepEqual(new Set(conn.served), new Set(['2.0.0']), 'every response came from 2.0.0');

    const sessionId = conn.sessionId!;
    const { messages, ends } = A.recorder.forSession(sessionId);
    assert.deepEqual(new Set(ends.map((e) => `${e.ctx.version} ${e.ctx.instanceId}`)), new Set(['2.0.0 calc-2.0.0-a']));
    const calls = messages.filter((m) => m.direction === 'client_to_server' && m.msg.method === 'tools/call');
    assert.equal(calls.length, 51);
    const answers = messages.filter((m) => m.direction === 'server_to_client' && 'result' in m.msg);
    for (const call of calls) assert.ok(answers.some((a) => a.msg.id === call.msg.id), `response to ${String(call.msg.id)} captured`);
    assert.ok(messages.some((m) => m.direction === 'client_to_server' && m.msg.method === 'initialize'), 'the initialize request carries the session id it got');
    assert.ok(messages.some((m) => m.msg.method === 'notifications/initialized'));
    assert.ok(answers.every((a) => a.transport === 'sse' && a.size > 0));
    assert.equal(ends.reduce((n, e) => n + e.outcome.toolErrors, 0), 1, 'the division by zero is the one tool error');
    assert.ok(ends.every((e) => !e.outcome.timedOut && e.outcome.rpcErrors === 0 && e.outcome.latencyMs >= 0));
    await disconnect(conn);
  });

  test('a weight change moves new sessions only', async () => {
    await setRouting('calc', CANARY_90_10, A);
    const old = await connect(A.url('calc'), { force: '1.0.0' });
    assert.equal(old.version, '1.0.0');
    // No invalidate(): the change must reach the gateway through its own refresh of MongoDB.
    await setRouting('calc', { stable: '1.0.0', weights: { '1.0.0': 0, '2.0.0': 100 }, pulled: [] });
    // Before the refresh, one session in ten lands on 2.0.0 anyway: five in a row say the change arrived.
    await until('new sessions on 2.0.0', async () => {
      for (let i = 0; i < 5; i++) {
        const probe = await connect(A.url('calc'));
        await disconnect(probe);
        if (probe.version !== '2.0.0') return undefined;
      }
      return true;
    });
    for (let i = 0; i < 20; i++) {
      const conn = await connect(A.url('calc'));
      assert.equal(conn.version, '2.0.0');
      await disconnect(conn);
    }
    for (let i = 0; i < 5; i++) assert.equal(text(await old.client.callTool({ name: 'multiply', arguments: { a: i, b: 2 } })), String(i * 2));
    assert.deepEqual(new Set(old.served), new Set(['1.0.0']), 'the existing session stayed on 1.0.0');
    await disconnect(old);
  });

  test("a pulled version's session gets 404, and a new session (the client's answer to it) lands on stable", async () => {
    await setRouting('calc', CANARY_90_10, A);
    const canary = await connect(A.url('calc'), { force: '2.0.0' });
    assert.equal(text(await canary.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2');
    await setRouting('calc', { stable: '1.0.0', weights: { '1.0.0': 100, '2.0.0': 0 }, pulled: ['2.0.0'] });

    const err = await until('the pulled session to be refused', async () => {
      try {
        await canary.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
        return undefined;
      } catch (e) {
        return e;
      }
    });
    assert.ok(err instanceof StreamableHTTPError, String(err));
    assert.equal(err.code, 404);
    assert.match(err.message, /Session not found/);
    // The SDK client (1.32) leaves re-initializing to the application: a new client, as the spec says.
    await disconnect(canary);
    const fresh = await connect(A.url('calc'));
    assert.equal(fresh.version, '1.0.0');
    assert.equal(text(await fresh.client.callTool({ name: 'add', arguments: { a: 2, b: 2 } })), '4');
    const doc = await store.sessions.findOne({ _id: canary.sessionId! });
    assert.ok(doc?.closedAt, 'the pulled session is closed for every gateway');
    await disconnect(fresh);
    // A forced version that is pulled is not routable either.
    const forced = await post(A.url('calc'), initializeMessage(), { 'x-mcpship-version': '2.0.0' });
    assert.equal(forced.status, 404);
  });

  test('a second gateway on the same MongoDB routes an existing session to the same instance; DELETE ends it for both', async () => {
    await setRouting('calc', CANARY_90_10, A);
    const onA = await connect(A.url('calc'), { force: '1.0.0' });
    const B = await startGateway();
    // Reuse A's session on B without a new initialize. Only the instance that created the session
    // knows it, so the call succeeds only if B picks that same one of the two 1.0.0 instances.
    const onB = await connect(B.url('calc'), { sessionId: onA.sessionId! });
    assert.equal(text(await onB.client.callTool({ name: 'add', arguments: { a: 20, b: 22 } })), '42');
    assert.deepEqual(onB.served, ['1.0.0']);
    const instanceOnA = A.recorder.forSession(onA.sessionId!).ends[0]!.ctx.instanceId;
    assert.deepEqual(new Set(B.recorder.forSession(onA.sessionId!).ends.map((e) => e.ctx.instanceId)), new Set([instanceOnA]));
    await disconnect(onB);

    // DELETE through A: forwarded, then forgotten by A and, through MongoDB, by a gateway that never saw it.
    const other = await connect(A.url('calc'));
    const sessionId = other.sessionId!;
    await other.transport.terminateSession();
    for (const g of [A, await startGateway()]) {
      const res = await post(g.url('calc'), { jsonrpc: '2.0', id: 5, method: 'tools/list' }, { 'mcp-session-id': sessionId });
      assert.equal(res.status, 404);
      assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 5, error: { code: -32001, message: 'Session not found' } });
    }
    await disconnect(other);
    await disconnect(onA);
  });
});

describe('instances that stop serving', GUARD, () => {
  test('a session whose instance is not ready or gone gets 404; new sessions go where the runner says', async () => {
    const first = await startCalculator(v1Dir);
    await addInstance('doomed', '1.0.0', 'doomed-1', first);
    await setRouting('doomed', { stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [] }, A);
    const drained = await connect(A.url('doomed'));
    assert.equal(text(await drained.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2');

    // The runner drains the instance: its sessions are refused once the gateway sees it.
    await addInstance('doomed', '1.0.0', 'doomed-1', first, 'draining');
    const refused = await until('the draining instance to be seen', async () => {
      try {
        await drained.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
        return undefined;
      } catch (e) {
        return e;
      }
    });
    assert.ok(refused instanceof StreamableHTTPError && refused.code === 404, String(refused));
    await disconnect(drained);
    const none = await post(A.url('doomed'), initializeMessage('2025-11-25', 3));
    assert.equal(none.status, 503, 'no ready instance');
    assert.equal(((await none.json()) as { id: number }).id, 3);

    // Ready again, then the process dies before the runner notices: refused connections mean the
    // session is gone with its process (404), and new sessions get a JSON-RPC 502 meanwhile.
    await addInstance('doomed', '1.0.0', 'doomed-1', first);
    A.gateway.cache.invalidate('doomed');
    const killed = await connect(A.url('doomed'));
    const child = children.at(-1)!;
    child.kill('SIGKILL');
    await child;
    await assert.rejects(killed.client.callTool({ name: 'add', arguments: { a: 1, b: 1 } }), (e) => e instanceof StreamableHTTPError && e.code === 404);
    await disconnect(killed);
    const bad = await post(A.url('doomed'), initializeMessage('2025-11-25', 4));
    assert.equal(bad.status, 502);
    assert.deepEqual(((await bad.json()) as { id: number; error: { code: number } }).id, 4);
    const event = await until('the unreachable event', async () => (await new EventStore(store).list({ service: 'doomed', kind: 'gateway.instance_unreachable' }))[0]);
    assert.equal(event.details?.instanceId, 'doomed-1');
    assert.ok(A.recorder.ends.some((e) => e.ctx.service === 'doomed' && e.outcome.httpStatus === 0), 'reported as no response');

    // The runner restarts it on a new port: the client's new session succeeds.
    const second = await startCalculator(v1Dir);
    await addInstance('doomed', '1.0.0', 'doomed-1', second);
    A.gateway.cache.invalidate('doomed');
    const again = await connect(A.url('doomed'));
    assert.equal(text(await again.client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })), '5');
    await disconnect(again);
  });
});

describe('streaming', GUARD, () => {
  test('the GET SSE stream passes server-initiated messages through while it stays open, headers intact', async () => {
    const conn = await connect(A.url('streamy'));
    let received = 0;
    conn.client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      received++;
    });
    // The SDK client opens its GET stream in the background after initialize; notify until it is there.
    await until('a notification on the GET stream', async () => {
      streamy.notifyAll();
      await sleep(100);
      return received > 0 ? true : undefined;
    });
    const sessionId = conn.sessionId!;
    assert.ok(A.recorder.forSession(sessionId).messages.some((m) => m.direction === 'server_to_client' && m.msg.method === 'notifications/tools/list_changed' && m.transport === 'sse'));
    await disconnect(conn);

    // By hand: the head arrives before any event, the stream stays open, request headers pass.
    const raw = await rawSession(A.url('streamy'));
    const res = await fetch(A.url('streamy'), {
      headers: { accept: 'text/event-stream', 'mcp-session-id': raw.sessionId, 'mcp-protocol-version': '2025-11-25', 'last-event-id': 'evt-7' },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('content-encoding'), null);
    assert.equal(res.headers.get('x-mcpship-version'), '1.0.0');
    assert.match(res.headers.get('cache-control') ?? '', /no-transform/);
    const get = streamy.seenHeaders.filter((h) => h.method === 'GET').at(-1);
    assert.deepEqual(get, { 'last-event-id': 'evt-7', 'mcp-protocol-version': '2025-11-25', method: 'GET' });
    const reader = res.body!.getReader();
    let chunk: ReadableStreamReadResult<Uint8Array> | undefined;
    const read = reader.read().then((r) => (chunk = r));
    await until('an SSE chunk', async () => {
      streamy.notifyAll();
      await Promise.race([read, sleep(100)]);
      return chunk;
    });
    assert.equal(chunk!.done, false, 'the stream is still open');
    assert.match(Buffer.from(chunk!.value!).toString('utf8'), /notifications\/tools\/list_changed/);
    await reader.cancel();
  });

  test('an instance silent for upstreamTimeoutMs: a JSON-RPC timeout error (504 before the head, in-stream after it)', async () => {
    const C = await startGateway({ config: { ...config, gateway: { ...config.gateway, upstreamTimeoutMs: 1500 } } });
    const conn = await connect(C.url('streamy'));
    // The SDK server had sent its SSE head already: the error arrives in-stream, as the JSON-RPC
    // error answering the call (an McpError with the code), not as a broken connection.
    await assert.rejects(conn.client.callTool({ name: 'hang' }), (e: Error) => e instanceof McpError && e.code === -32001 && /timed out/i.test(e.message));
    const hung = C.recorder.ends.find((e) => e.outcome.timedOut);
    assert.ok(hung, 'the exchange ended as timed out');
    assert.equal(hung.ctx.sessionId, conn.sessionId);
    assert.equal(hung.outcome.httpStatus, 200);
    assert.ok(C.recorder.messages.some((m) => m.direction === 'server_to_client' && (m.msg.error as { code?: number } | undefined)?.code === -32001 && m.transport === 'sse'));
    // The session itself is fine afterwards.
    assert.equal(text(await conn.client.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here');
    await disconnect(conn);

    const blackhole = await startBlackhole();
    cleanups.push(() => blackhole.close());
    await addInstance('blackhole', '1.0.0', 'blackhole-a', blackhole.url);
    await setRouting('blackhole', { stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [] });
    const res = await post(C.url('blackhole'), initializeMessage('2025-11-25', 'init-1'));
    assert.equal(res.status, 504);
    const body = (await res.json()) as { id: unknown; error: { code: number; message: string } };
    assert.equal(body.id, 'init-1');
    assert.equal(body.error.code, -32001);
    assert.ok(C.recorder.ends.some((e) => e.ctx.service === 'blackhole' && e.outcome.timedOut));
  });

  test('a kept-alive connection the instance reset before answering: the request is sent again on a new one, the client sees no error', async () => {
    const flaky = await startStateless('1.0.0', { resetReused: true });
    cleanups.push(flaky.close);
    await addInstance('resetting', '1.0.0', 'resetting-1', flaky.url);
    await setRouting('resetting', { weights: { '1.0.0': 100 }, pulled: [] });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const call = { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
      const res = await post(A.url('resetting'), call, { 'mcp-protocol-version': '2025-11-25' });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    assert.ok(flaky.resets() > 0, 'the gateway reused its connections (the instance reset some)');
    assert.deepEqual(statuses, Array(12).fill(200));
  });

  test('a stateless upstream (no session id): each client keeps one version, clients spread by weight', async () => {
    const [s1, s2] = await Promise.all([startStateless('1.0.0'), startStateless('2.0.0')]);
    cleanups.push(s1.close, s2.close);
    await addInstance('stateless', '1.0.0', 'stateless-1', s1.url);
    await addInstance('stateless', '2.0.0', 'stateless-2', s2.url);
    await setRouting('stateless', { weights: { '1.0.0': 50, '2.0.0': 50 }, pulled: [] });
    const conn = await connect(A.url('stateless'));
    assert.equal(conn.sessionId, undefined);
    // Requests no session pins go by client key (docs/protocol.md): one client, one version.
    const mine = new Set<string>();
    for (let i = 0; i < 10; i++) mine.add(text(await conn.client.callTool({ name: 'whoami' })));
    assert.equal(mine.size, 1);
    const versions = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const call = { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'whoami', arguments: {} } };
      const res = await post(A.url('stateless'), call, { 'x-mcpship-client': `client-${i}`, 'mcp-protocol-version': '2025-11-25' });
      versions.add(res.headers.get('x-mcpship-version') ?? '');
      await res.body?.cancel();
    }
    assert.deepEqual(versions, new Set(['1.0.0', '2.0.0']));
    assert.ok(A.recorder.messages.some((m) => m.ctx.service === 'stateless' && m.transport === 'json' && m.direction === 'server_to_client'));
    await disconnect(conn);
  });
});

describe('circuit breaker hooks', GUARD, () => {
  /** A breaker whose state the test sets; half-open lets `probes` requests through. */
  const stub = { open: new Set<string>(), probes: 0 };
  const breaker: BreakerView = {
    isOpen: (service, version) => stub.open.has(`${service}@${version}`),
    allowRequest: (service, version) => {
      if (!stub.open.has(`${service}@${version}`)) return true;
      if (stub.probes > 0) {
        stub.probes--;
        return true;
      }
      return false;
    },
  };

  test('an open canary: new sessions go to stable, its sessions get 404; an open version with no fallback answers 503 but lets probes through', async () => {
    const D = await startGateway({ breaker });
    await setRouting('calc', CANARY_90_10, A, D);
    const canary = await connect(D.url('calc'), { force: '2.0.0' });
    stub.open.add('calc@2.0.0');
    for (let i = 0; i < 20; i++) {
      const conn = await connect(D.url('calc'));
      assert.equal(conn.version, '1.0.0');
      await disconnect(conn);
    }
    await assert.rejects(canary.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), (e) => e instanceof StreamableHTTPError && e.code === 404);
    await disconnect(canary);

    await addInstance('solo', '1.0.0', 'solo-a', calc['calc-1.0.0-a']!);
    await setRouting('solo', { weights: { '1.0.0': 100 }, pulled: [] }, D);
    const before = await connect(D.url('solo'));
    stub.open.add('solo@1.0.0');
    const refused = await post(D.url('solo'), initializeMessage('2025-11-25', 9));
    assert.equal(refused.status, 503);
    assert.deepEqual(((await refused.json()) as { id: number; error: { code: number } }).id, 9);
    await assert.rejects(before.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), (e) => e instanceof StreamableHTTPError && e.code === 503);
    stub.probes = 1;
    assert.equal(text(await before.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3', 'the half-open probe went through');
    await assert.rejects(before.client.callTool({ name: 'add', arguments: { a: 1, b: 2 } }), (e) => e instanceof StreamableHTTPError && e.code === 503);
    stub.open.clear();
    assert.equal(text(await before.client.callTool({ name: 'add', arguments: { a: 2, b: 2 } })), '4', 'closed again');
    await disconnect(before);
  });
});

describe('security and bad input', GUARD, () => {
  test('Origin not on the allow-list → 403; an allowed one gets CORS headers; no Origin is a non-browser client', async () => {
    const evil = await post(A.url('calc'), initializeMessage(), { origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    const body = (await evil.json()) as { jsonrpc: string; error: { code: number; message: string } };
    assert.equal(body.jsonrpc, '2.0');
    assert.match(body.error.message, /origin/);
    assert.equal((await post(A.url('calc'), initializeMessage(), { origin: 'null' })).status, 403);

    const allowed = await post(A.url('calc'), initializeMessage(), { origin: ALLOWED_ORIGIN });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN);
    assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /Mcp-Session-Id/);
    await allowed.body?.cancel();
    const preflight = await fetch(A.url('calc'), { method: 'OPTIONS', headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Mcp-Session-Id/);
  });

  test('Host not a loopback name → 403 (DNS rebinding); loopback names pass with any port', async () => {
    for (const host of ['evil.example', 'evil.example:80', 'localhost.evil.example', '127.0.0.1.nip.io']) {
      const res = await rawRequest(A.port, '/mcp/calc', { host, accept: 'text/event-stream' });
      assert.equal(res.status, 403, host);
      assert.match(res.body, /"jsonrpc":"2.0"/);
    }
    for (const host of ['localhost:1234', '127.0.0.1', '[::1]:8080']) {
      // Past the guard, a GET without a session on a stateful service is the gateway's 400.
      const res = await rawRequest(A.port, '/mcp/calc', { host, accept: 'text/event-stream' });
      assert.equal(res.status, 400, host);
    }
  });

  test('a body over the limit → 413 with a JSON-RPC error, whether its length is declared or not', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'add', arguments: { pad: 'x'.repeat(config.gateway.bodyLimitBytes) } } });
    const declared = await post(A.url('calc'), big);
    assert.equal(declared.status, 413);
    assert.equal(((await declared.json()) as { error: { code: number } }).error.code, -32600);
    const chunked = await fetch(A.url('calc'), {
      method: 'POST',
      headers: JSON_SSE,
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(big));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
  });

  test('malformed JSON → -32700, invalid JSON-RPC → -32600 (HTTP 400)', async () => {
    const malformed = await post(A.url('calc'), '{"jsonrpc": "2.0", "id": 1, "method": ');
    assert.equal(malformed.status, 400);
    assert.deepEqual(((await malformed.json()) as { error: { code: number } }).error.code, -32700);
    for (const bad of [{ jsonrpc: '1.0', id: 1, method: 'initialize' }, { jsonrpc: '2.0', id: 2 }, [], '"just a string"', 42, { jsonrpc: '2.0', id: 3, method: 'x', params: [1] }]) {
      const res = await post(A.url('calc'), bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32600, JSON.stringify(bad));
    }
  });

  test('unknown service → 404; unknown session → 404; no session and not initialize → 400; other methods → 405', async () => {
    for (const service of ['nope', 'Not_A_Name']) {
      const res = await post(A.url(service), initializeMessage());
      assert.equal(res.status, 404, service);
      assert.equal(((await res.json()) as { jsonrpc: string }).jsonrpc, '2.0');
    }
    const unknown = await post(A.url('calc'), { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': randomUUID() });
    assert.equal(unknown.status, 404);
    const noSession = await post(A.url('calc'), { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    assert.equal(noSession.status, 400);
    const put = await fetch(A.url('calc'), { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, POST, DELETE');
  });

  test('X-Mcpship-Version needs the admin token once one is configured', async () => {
    const token = 'admin-token-for-tests';
    const E = await startGateway({ config: { ...config, api: { ...config.api, adminToken: token } } });
    await setRouting('calc', CANARY_90_10, A, E);
    const refused = await post(E.url('calc'), initializeMessage(), { 'x-mcpship-version': '2.0.0' });
    assert.equal(refused.status, 403);
    const wrong = await post(E.url('calc'), initializeMessage(), { 'x-mcpship-version': '2.0.0', 'x-mcpship-admin-token': 'nope' });
    assert.equal(wrong.status, 403);
    const forced = await post(E.url('calc'), initializeMessage(), { 'x-mcpship-version': '2.0.0', 'x-mcpship-admin-token': token });
    assert.equal(forced.status, 200);
    assert.equal(forced.headers.get('x-mcpship-version'), '2.0.0');
    await forced.body?.cancel();
  });

  test('JSON-RPC batches: refused from protocol 2025-06-18 on, passed through for 2025-03-26', async () => {
    await setRouting('calc', { stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [] }, A);
    const batch = [
      { jsonrpc: '2.0', id: 'x', method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } } },
      { jsonrpc: '2.0', id: 'y', method: 'tools/call', params: { name: 'multiply', arguments: { a: 3, b: 4 } } },
    ];
    const modern = await rawSession(A.url('calc'), '2025-11-25');
    assert.equal((modern.init.result as { protocolVersion: string }).protocolVersion, '2025-11-25');
    const refused = await post(A.url('calc'), batch, { 'mcp-session-id': modern.sessionId, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { error: { code: number } }).error.code, -32600);
    // The negotiated version counts even when a client leaves the header out.
    const noHeader = await post(A.url('calc'), batch, { 'mcp-session-id': modern.sessionId });
    assert.equal(noHeader.status, 400);

    const old = await rawSession(A.url('calc'), '2025-03-26');
    const passed = await post(A.url('calc'), batch, { 'mcp-session-id': old.sessionId, 'mcp-protocol-version': '2025-03-26' });
    assert.equal(passed.status, 200);
    const answers = await responseMessages(passed);
    const byId = Object.fromEntries(answers.map((m) => [m.id as string, ((m.result as CallToolResult).content[0] as { text: string }).text]));
    assert.deepEqual(byId, { x: '3', y: '12' });
  });
});
