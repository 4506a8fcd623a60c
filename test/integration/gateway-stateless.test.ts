/**
 * MCP 2026-07-28 (stateless) through the gateway, beside the session revisions: real dual-mode
 * servers (test/fixtures/dual-mode, SDK v2) as processes, MongoDB from the test stack, real SDK v2
 * clients for the stateless generation and the SDK v1 client for sessions.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client as SessionClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as SessionTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ResultPromise } from 'execa';
import express from 'express';
import { createGateway, type Gateway } from '../../api/gateway/gateway.ts';
import { PROTOCOL_VERSION_META_KEY } from '../../api/gateway/protocol-generation.ts';
import { SseParser } from '../../api/gateway/response-tap.ts';
import type { ExchangeContext, ExchangeOutcome, TrafficObserver } from '../../api/gateway/traffic.ts';
import type { Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { routingWeights, weightListOf } from '../../core/routing.ts';
import { startDualModeFixture } from '../support/dual-mode-fixture.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const GUARD = { timeout: 300_000 };
const SERVICE = 'dual';
const FIXTURE_TTL_MS = 60_000;

let config: Config;
let store: Store;
let gateway: Gateway;
let server: Server;
let base = '';
const children: ResultPromise[] = [];
const direct: Record<string, string> = {};
const log = createLogger('error', 'gateway-stateless-test');

class Recorder implements TrafficObserver {
  contexts: ExchangeContext[] = [];
  message(): void {}
  exchangeEnd(ctx: ExchangeContext, _outcome: ExchangeOutcome): void {
    this.contexts.push({ ...ctx });
  }
}
const recorder = new Recorder();

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await fn();
    if (value !== undefined) return value;
    if (i > 2_000) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

async function startFixture(version: string, responseMode: 'auto' | 'sse'): Promise<string> {
  const { child, url } = await startDualModeFixture({ VERSION: version, RESPONSE_MODE: responseMode, TTL_MS: String(FIXTURE_TTL_MS) });
  children.push(child);
  return url;
}

async function setWeights(doc: { stable: string; weights: Record<string, number>; pulled?: string[]; stepIntervalMs?: number }): Promise<void> {
  await store.routing.replaceOne(
    { service: SERVICE },
    { service: SERVICE, stable: doc.stable, weights: {}, weightList: weightListOf(doc.weights), pulled: doc.pulled ?? [], updatedAt: new Date(), ...(doc.stepIntervalMs !== undefined ? { stepIntervalMs: doc.stepIntervalMs } : {}) },
    { upsert: true },
  );
  // A step starts for clients when the gateway has read it (its own refresh, not an invalidate()).
  const want = JSON.stringify(doc.weights);
  await until('the gateway to read the new weights', async () => {
    const routes = await gateway.cache.get(SERVICE);
    const weights = routes.routing ? routingWeights(routes.routing) : {};
    const same = JSON.stringify(Object.fromEntries(Object.entries(weights).sort())) === JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(want) as Record<string, number>).sort()));
    return same && JSON.stringify(routes.routing?.pulled ?? []) === JSON.stringify(doc.pulled ?? []) ? true : undefined;
  });
}

/** A 2026-07-28 client identified one way or another; `served` gets X-Mcpship-Version of every POST. */
interface Identity {
  name: string;
  headers?: Record<string, string>;
  token?: string;
}

async function modernClient(identity: Identity, served: string[]) {
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    if ((init?.method ?? 'GET') === 'POST') served.push(res.headers.get('x-mcpship-version') ?? '');
    return res;
  };
  const transport = new ModernTransport(new URL(`${base}/${SERVICE}`), {
    fetch: fetchFn,
    ...(identity.headers ? { requestInit: { headers: identity.headers } } : {}),
    ...(identity.token ? { authProvider: { token: async () => identity.token! } } : {}),
  });
  const client = new ModernClient({ name: identity.name, version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2026-07-28');
  assert.equal(transport.sessionId, undefined);
  return client;
}

function text(result: unknown): string {
  return ((result as { content: { text: string }[] }).content[0]!).text;
}

async function listen(app: express.Express): Promise<{ server: Server; port: number }> {
  const s = await new Promise<Server>((resolve, reject) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    srv.once('error', reject);
  });
  return { server: s, port: (s.address() as AddressInfo).port };
}

/** The JSON-RPC messages of a response, JSON or a finished SSE stream. */
async function messages(res: Response): Promise<Record<string, unknown>[]> {
  const body = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return body ? [JSON.parse(body)].flat() : [];
  const parser = new SseParser();
  return [...parser.push(Buffer.from(body)), ...parser.end()].map((e) => JSON.parse(e.data) as Record<string, unknown>);
}

const modernMeta = { [PROTOCOL_VERSION_META_KEY]: '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}, 'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' } };

function rawPost(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(body) });
}

before(async () => {
  config = testConfig();
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
  const [v1, v2] = await Promise.all([startFixture('1.0.0', 'auto'), startFixture('2.0.0', 'sse')]);
  Object.assign(direct, { '1.0.0': v1!, '2.0.0': v2! });
  for (const [version, url] of Object.entries(direct)) {
    await store.instances.updateOne({ instanceId: `dual-${version}` }, { $set: { service: SERVICE, version, url, state: 'ready', restarts: 0, updatedAt: new Date() }, $setOnInsert: { instanceId: `dual-${version}` } }, { upsert: true });
  }
  gateway = createGateway({ config, store, log, observer: recorder });
  const app = express();
  app.use('/mcp', gateway.router);
  const listening = await listen(app);
  server = listening.server;
  base = `http://127.0.0.1:${listening.port}/mcp`;
  await setWeights({ stable: '1.0.0', weights: { '1.0.0': 100 } });
});

after(async () => {
  await gateway?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  for (const child of children) child.kill('SIGKILL');
  await Promise.allSettled(children);
  if (store) {
    await store.db.dropDatabase().catch(() => {});
    await store.close();
  }
});

describe('2026-07-28 beside sessions', GUARD, () => {
  test('a session client on the same version does not make stateless requests need a session', async () => {
    // The bug this replaces: the gateway learned "stateful" for 1.0.0 from this initialize and then
    // refused every stateless request to 1.0.0 with 400 "Mcp-Session-Id header is required".
    const session = new SessionClient({ name: 'legacy', version: '1.0.0' });
    const transport = new SessionTransport(new URL(`${base}/${SERVICE}`));
    await session.connect(transport);
    assert.ok(transport.sessionId, 'the 2025 client got a session');
    assert.equal(text(await session.callTool({ name: 'whoami', arguments: {} })), '1.0.0');

    const served: string[] = [];
    const modern = await modernClient({ name: 'after-legacy', headers: { 'x-mcpship-client': 'after-legacy' } }, served);
    assert.equal(text(await modern.callTool({ name: 'whoami', arguments: {} })), '1.0.0');
    assert.equal((await modern.listTools()).tools.length, 2);
    await modern.close();
    assert.equal(text(await session.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here', 'the session is untouched');
    await transport.terminateSession();
    await session.close();

    const ctx = recorder.contexts.find((c) => c.clientKey === 'client:after-legacy');
    assert.ok(ctx, 'the traffic observer sees the client key');
    assert.equal(ctx.generation, 'stateless');
    assert.equal(ctx.protocolRevision, '2026-07-28');
    assert.ok(recorder.contexts.some((c) => c.generation === 'session' && c.protocolRevision === '2025-11-25' && c.sessionId), 'and the negotiated revision of sessions');
  });

  test('the server answers are passed on unchanged: statuses, JSON-RPC errors, headers', async () => {
    const cases: { name: string; body: unknown; headers?: Record<string, string> }[] = [
      { name: 'modern header without the _meta envelope', body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, headers: { 'mcp-protocol-version': '2026-07-28' } },
      { name: 'Mcp-Method header that disagrees with the body', body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: modernMeta } }, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' } },
      { name: 'a method removed in 2026-07-28 (ping)', body: { jsonrpc: '2.0', id: 3, method: 'ping', params: { _meta: modernMeta } }, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'ping' } },
      { name: 'an unsupported revision', body: { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: { ...modernMeta, [PROTOCOL_VERSION_META_KEY]: '2099-01-01' } } }, headers: { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' } },
      { name: 'server/discover', body: { jsonrpc: '2.0', id: 5, method: 'server/discover', params: { _meta: modernMeta } }, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' } },
      { name: 'a tool call with Mcp-Name', body: { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: modernMeta } }, headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' } },
    ];
    const statuses: Record<string, number> = {};
    for (const c of cases) {
      const straight = await rawPost(direct['1.0.0']!, c.body, c.headers);
      const through = await rawPost(`${base}/${SERVICE}`, c.body, { ...c.headers, 'x-mcpship-client': 'raw' });
      assert.equal(through.status, straight.status, c.name);
      assert.equal(through.headers.get('content-type')?.split(';')[0], straight.headers.get('content-type')?.split(';')[0], c.name);
      const [a, b] = [await messages(straight), await messages(through)];
      const strip = (ms: Record<string, unknown>[]) => ms.map((m) => ({ ...m, result: m.result ? Object.keys(m.result as object).sort() : undefined }));
      assert.deepEqual(strip(b), strip(a), c.name);
      statuses[c.name] = through.status;
      if (through.status === 200) assert.equal(through.headers.get('x-mcpship-version'), '1.0.0');
    }
    console.log('server answers through the gateway:', JSON.stringify(statuses));
    assert.ok(Object.values(statuses).some((s) => s >= 400), 'some cases are errors, passed on as such');
  });

  test('subscriptions/listen: a long-lived stream passes through and outlives the upstream timeout', async () => {
    const short = testConfig({ MCPSHIP_UPSTREAM_TIMEOUT_MS: '300' });
    const g = createGateway({ config: short, store, log });
    const app = express();
    app.use('/mcp', g.router);
    const { server: s, port } = await listen(app);
    try {
      const controller = new AbortController();
      const listen = () =>
        fetch(`http://127.0.0.1:${port}/mcp/${SERVICE}`, {
          method: 'POST',
          signal: controller.signal,
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen', 'x-mcpship-client': 'listener' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true }, _meta: modernMeta } }),
        });
      // The timeout still applies until the stream's head arrives; on a loaded machine the server
      // can miss 300 ms (a 504, rightly), and that is not what this test is about.
      let res = await listen();
      for (let attempt = 1; res.status === 504 && attempt < 5; attempt++) res = await listen();
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = res.body!.getReader();
      const parser = new SseParser();
      const first = await until('the acknowledgement event', async () => {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the stream ended early');
        return parser.push(value)[0];
      });
      assert.match(first.data, /subscriptions\/acknowledged|result/);
      // Quiet for several upstream timeouts: a request would have been cut; a channel is not.
      await sleep(1_500);
      const pending = reader.read();
      const state = await Promise.race([pending.then((r) => (r.done ? 'ended' : 'data')), sleep(200).then(() => 'open')]);
      assert.equal(state, 'open', 'the listen stream is still open');
      controller.abort();
      await pending.catch(() => {});
    } finally {
      await g.close();
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  test('a full ramp 0 → 10 → 25 → 50 → 100% with stateless clients: nobody sees two versions within a step, the canary only gains clients, ttlMs capped while two versions are routable', async () => {
    const identities: Identity[] = [
      ...Array.from({ length: 8 }, (_, i) => ({ name: `agent-${i}`, headers: { 'x-mcpship-client': `agent-${i}` } })),
      ...Array.from({ length: 4 }, (_, i) => ({ name: 'token-holder', token: `token-${i}` })),
      ...Array.from({ length: 3 }, (_, i) => ({ name: `desktop-app-${i}` })),
    ];
    const steps: { label: string; doc: Parameters<typeof setWeights>[0]; routable: number }[] = [
      { label: 'stable only', doc: { stable: '1.0.0', weights: { '1.0.0': 100 } }, routable: 1 },
      { label: '10%', doc: { stable: '1.0.0', weights: { '1.0.0': 90, '2.0.0': 10 }, stepIntervalMs: 2_000 }, routable: 2 },
      { label: '25%', doc: { stable: '1.0.0', weights: { '1.0.0': 75, '2.0.0': 25 }, stepIntervalMs: 2_000 }, routable: 2 },
      { label: '50%', doc: { stable: '1.0.0', weights: { '1.0.0': 50, '2.0.0': 50 }, stepIntervalMs: 2_000 }, routable: 2 },
      { label: 'promoted', doc: { stable: '2.0.0', weights: { '2.0.0': 100, '1.0.0': 0 } }, routable: 1 },
    ];
    let onCanary = new Set<string>();
    const table: string[] = [];
    for (const step of steps) {
      await setWeights(step.doc);
      const now = new Set<string>();
      await Promise.all(
        identities.map(async (identity, i) => {
          const id = `${identity.name}#${i}`;
          const served: string[] = [];
          const client = await modernClient(identity, served);
          const list = await client.listTools();
          const answers = [];
          for (let call = 0; call < 3; call++) answers.push(text(await client.callTool({ name: 'whoami', arguments: {} })));
          await client.close();
          const versions = new Set([...served, ...answers]);
          assert.equal(versions.size, 1, `${id} saw ${[...versions].join(' and ')} at ${step.label}`);
          const version = [...versions][0]!;
          if (version === '2.0.0') now.add(id);
          assert.equal(list.ttlMs, step.routable > 1 ? 2_000 : FIXTURE_TTL_MS, `${id} ttlMs at ${step.label} (version ${version})`);
        }),
      );
      if (step.label !== 'promoted') for (const id of onCanary) assert.ok(now.has(id), `${id} left the canary at ${step.label}`);
      table.push(`${step.label}: ${now.size}/${identities.length} on 2.0.0`);
      onCanary = now;
    }
    console.log(`ramp: ${table.join('; ')}`);
    assert.equal(onCanary.size, identities.length, 'after promotion everyone is on 2.0.0');
  });

  test('a pulled canary moves its clients to stable on their next request', async () => {
    await setWeights({ stable: '1.0.0', weights: { '1.0.0': 50, '2.0.0': 50 } });
    const ids = Array.from({ length: 10 }, (_, i) => `pull-${i}`);
    const before = new Map<string, string>();
    for (const id of ids) {
      const served: string[] = [];
      const client = await modernClient({ name: id, headers: { 'x-mcpship-client': id } }, served);
      before.set(id, text(await client.callTool({ name: 'whoami', arguments: {} })));
      await client.close();
    }
    assert.ok([...before.values()].includes('2.0.0'), 'some clients were on the canary');
    await setWeights({ stable: '1.0.0', weights: { '1.0.0': 100, '2.0.0': 0 }, pulled: ['2.0.0'] });
    for (const id of ids) {
      const served: string[] = [];
      const client = await modernClient({ name: id, headers: { 'x-mcpship-client': id } }, served);
      assert.equal(text(await client.callTool({ name: 'whoami', arguments: {} })), '1.0.0', id);
      assert.ok(served.every((v) => v === '1.0.0'));
      await client.close();
    }
  });

  test('X-Mcpship-Version on a stateless request needs the admin token, whatever session header comes with it', async () => {
    const token = 'a-long-enough-admin-token-for-this-test-0123456789';
    const g = createGateway({ config: testConfig({ MCPSHIP_ADMIN_TOKEN: token }), store, log });
    const app = express();
    app.use('/mcp', g.router);
    const { server: s, port } = await listen(app);
    try {
      const url = `http://127.0.0.1:${port}/mcp/${SERVICE}`;
      const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: modernMeta } };
      const headers = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami', 'x-mcpship-version': '1.0.0' };
      for (const extra of [{}, { 'mcp-session-id': 'not-a-session' }] as Record<string, string>[]) {
        const refused = await rawPost(url, call, { ...headers, ...extra });
        assert.equal(refused.status, 403, JSON.stringify(extra));
        await refused.body?.cancel();
      }
      const allowed = await rawPost(url, call, { ...headers, 'x-mcpship-admin-token': token });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get('x-mcpship-version'), '1.0.0');
      await allowed.body?.cancel();
    } finally {
      await g.close();
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  test('a bad X-Mcpship-Client is refused with a clear error', async () => {
    const res = await rawPost(`${base}/${SERVICE}`, { jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: modernMeta } }, { 'x-mcpship-client': 'x'.repeat(300) });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { id: number; error: { code: number; message: string } };
    assert.equal(body.id, 9);
    assert.match(body.error.message, /X-Mcpship-Client/);
  });
});
