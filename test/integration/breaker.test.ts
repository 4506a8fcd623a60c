/**
 * The real circuit breaker through the real gateway (createTrafficGateway, as `mcpship up` wires
 * it), MongoDB from the test stack, an MCP SDK server upstream that can be told to fail, and the
 * SDK's own client: tool-level errors never turn the last routable version into a 503; a version
 * that stops answering is refused fast, probed after the cooldown, and closed only by work requests.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import express from 'express';
import { z } from 'zod';
import { createTrafficGateway, type TrafficGateway } from '../../api/gateway/traffic-gateway.ts';
import type { Config } from '../../core/config.ts';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { weightListOf } from '../../core/routing.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

let config: Config;
let store: Store;
let events: EventStore;
let traffic: TrafficGateway;
let gatewayServer: Server;
let base = '';
const servers: Server[] = [];
const clients = new Set<Client>();

function listen(app: express.Express): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port }));
    server.once('error', reject);
  });
}

/** A stateful SDK server with `divide` (b = 0 is a tool error); while `failing`, every tools/call gets HTTP 500. */
async function startUpstream() {
  const mode = { failing: false };
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const app = createMcpExpressApp({ host: '127.0.0.1' });
  app.post('/mcp', async (req, res) => {
    if (mode.failing && req.body?.method === 'tools/call') return void res.status(500).json({ jsonrpc: '2.0', id: req.body.id ?? null, error: { code: -32603, message: 'injected failure' } });
    const existing = transports.get(req.get('mcp-session-id') ?? '');
    if (existing) return existing.handleRequest(req, res, req.body);
    if (!isInitializeRequest(req.body)) return void res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    const server = new McpServer({ name: 'divider', version: '1.0.0' });
    server.registerTool('divide', { description: 'a / b', inputSchema: { a: z.number(), b: z.number() } }, async ({ a, b }) =>
      b === 0 ? { content: [{ type: 'text', text: 'Division by zero' }], isError: true } : { content: [{ type: 'text', text: String(a / b) }] },
    );
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void transports.set(sid, transport) });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.get('/mcp', (_req, res) => void res.status(405).set('Allow', 'POST').end());
  app.delete('/mcp', (req, res) => void transports.get(req.get('mcp-session-id') ?? '')?.handleRequest(req, res));
  const { server, port } = await listen(app);
  servers.push(server);
  return { url: `http://127.0.0.1:${port}/mcp`, mode };
}

/** One service routed to one ready instance of version 1.0.0, with breaker thresholds, as a rollout would leave it. */
async function addService(service: string, url: string, routing: { stable?: string; breaker: Record<string, number> }): Promise<void> {
  await store.instances.updateOne({ instanceId: `${service}-a` }, { $set: { service, version: '1.0.0', url, state: 'ready', restarts: 0, updatedAt: new Date() } }, { upsert: true });
  await store.routing.replaceOne(
    { service },
    { service, ...(routing.stable ? { stable: routing.stable } : {}), weights: {}, weightList: weightListOf({ '1.0.0': 100 }), pulled: [], breaker: routing.breaker, updatedAt: new Date() },
    { upsert: true },
  );
  // The gateway reads thresholds (and the stable version) on a timer: the test starts once they are in.
  await waitFor(`${service}'s thresholds`, () => traffic.breaker.thresholds(service).minRequests === routing.breaker.minRequests);
}

async function connect(service: string): Promise<Client> {
  const client = new Client({ name: 'breaker-test', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/${service}`)));
  clients.add(client);
  return client;
}

const divide = (client: Client, a: number, b: number) => client.callTool({ name: 'divide', arguments: { a, b } }) as Promise<CallToolResult>;
const text = (r: CallToolResult) => (r.content[0] as { text: string }).text;
const httpStatusOf = (err: unknown) => (err instanceof StreamableHTTPError ? err.code : undefined);

before(async () => {
  config = testConfig();
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
  events = new EventStore(store);
  traffic = createTrafficGateway({ config, store, events, log: createLogger('error', 'breaker-test') });
  const app = express();
  app.use('/mcp', traffic.gateway.router);
  const { server, port } = await listen(app);
  gatewayServer = server;
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await Promise.allSettled([...clients].map((c) => c.close()));
  await traffic?.close();
  for (const s of [gatewayServer, ...servers]) {
    s?.closeAllConnections();
    await new Promise((resolve) => s?.close(resolve));
  }
  await store?.db.dropDatabase();
  await store?.close();
});

test('tool errors open the breaker of the last routable version, yet nothing gets a 503: the version answers for itself', async () => {
  const upstream = await startUpstream();
  await addService('solo', upstream.url, { breaker: { minRequests: 6, cooldownMs: 60_000 } });
  const sessions = await Promise.all([connect('solo'), connect('solo'), connect('solo')]);
  for (const client of sessions) for (let i = 0; i < 3; i++) assert.equal((await divide(client, 1, 0)).isError, true);
  assert.equal(traffic.breaker.state('solo', '1.0.0'), 'open', 'nine failed calls from three clients trip it');
  assert.equal(traffic.breaker.failFast('solo', '1.0.0'), false);

  // Its own sessions and a new one (initialize included) are still served, errors and all.
  assert.equal(text(await divide(sessions[0]!, 4, 2)), '2');
  const late = await connect('solo');
  assert.equal(text(await divide(late, 9, 3)), '3');
  assert.equal((await divide(late, 1, 0)).isError, true, 'a tool error, not a 503');
  const open = await waitFor('BREAKER_OPEN', async () => (await events.list({ service: 'solo', kind: 'BREAKER_OPEN' }))[0]);
  assert.equal((open.details as { pulled: boolean }).pulled, false, 'nothing to pull it in favour of');
});

test('the stable version with tool errors stays closed and records an alert', async () => {
  const upstream = await startUpstream();
  await addService('stable-errors', upstream.url, { stable: '1.0.0', breaker: { minRequests: 6, cooldownMs: 60_000 } });
  await waitFor('the stable version known to the breaker', async () => (await store.routing.findOne({ service: 'stable-errors' }))?.stable === '1.0.0');
  const sessions = await Promise.all([connect('stable-errors'), connect('stable-errors'), connect('stable-errors')]);
  // The refresh that carries `stable` may land a moment after the thresholds: keep failing until the alert.
  const alert = await waitFor('BREAKER_ALERT', async () => {
    for (const client of sessions) assert.equal((await divide(client, 1, 0)).isError, true);
    return (await events.list({ service: 'stable-errors', kind: 'BREAKER_ALERT' }))[0];
  });
  assert.match(((alert.details as { reasons: string[] }).reasons ?? []).join(' '), /error rate 100\.0%/);
  assert.equal(traffic.breaker.state('stable-errors', '1.0.0'), 'closed');
  assert.equal((await events.list({ service: 'stable-errors', kind: 'BREAKER_OPEN' })).length, 0);
  assert.equal(text(await divide(sessions[0]!, 8, 4)), '2');
});

test('a version that stops answering is refused fast; after the cooldown probes go through and only successful work requests close it', async () => {
  const upstream = await startUpstream();
  await addService('flaky', upstream.url, { breaker: { minRequests: 4, cooldownMs: 1_000, halfOpenSuccesses: 2 } });
  const sessions = await Promise.all([connect('flaky'), connect('flaky'), connect('flaky')]);
  upstream.mode.failing = true;
  const statuses: (number | undefined)[] = [];
  for (const client of sessions) for (let i = 0; i < 2; i++) await divide(client, 1, 1).then(() => statuses.push(200), (err) => statuses.push(httpStatusOf(err)));
  assert.equal(statuses.filter((s) => s === 500).length >= 4, true, `the upstream's 500s: ${statuses.join(',')}`);
  assert.equal(traffic.breaker.state('flaky', '1.0.0'), 'open');
  assert.equal(traffic.breaker.failFast('flaky', '1.0.0'), true);
  await assert.rejects(divide(sessions[0]!, 1, 1), (err) => httpStatusOf(err) === 503 && /circuit open/.test(String((err as Error).message)), 'refused by the gateway, not passed on');

  upstream.mode.failing = false;
  await waitFor('half-open', () => traffic.breaker.state('flaky', '1.0.0') === 'half-open');
  // A new client's initialize may pass as a probe, but proves nothing: still half-open.
  const late = await connect('flaky');
  assert.equal(traffic.breaker.state('flaky', '1.0.0'), 'half-open', 'an initialize does not close it');
  assert.equal(text(await divide(late, 6, 3)), '2');
  assert.equal(traffic.breaker.state('flaky', '1.0.0'), 'half-open', 'one successful call of the two needed');
  assert.equal(text(await divide(sessions[1]!, 8, 2)), '4');
  assert.equal(traffic.breaker.state('flaky', '1.0.0'), 'closed');
  assert.equal(text(await divide(sessions[2]!, 9, 9)), '1');
});
