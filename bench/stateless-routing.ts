/**
 * Benchmark (issue 8): what routing 2026-07-28 (stateless) requests costs in the gateway — the
 * per-request generation check, the client key and its consistent hash — and what capping `ttlMs`
 * during a canary adds to a cacheable result.
 *
 * Set-up: the stack (startStack, or TEMPORAL_ADDRESS/MONGODB_URI), the store, a gateway
 * (createGateway, no observer: capture and metrics are measured by gateway-overhead.ts), two
 * dual-mode SDK v2 servers (test/fixtures/dual-mode) as versions 1.0.0 and 2.0.0 of one service.
 * One client sends BENCH_SERIAL_CALLS raw 2026-07-28 requests one at a time (after
 * BENCH_WARMUP), straight to 1.0.0 and through the gateway, in rotating rounds: `tools/call`, and
 * `tools/list` (its result carries ttlMs 60000) with one routable version (passed byte for byte)
 * and at a 50/50 canary (rewritten to the step interval).
 *
 * Run: npx tsx bench/stateless-routing.ts
 */
import { performance } from 'node:perf_hooks';
import type { ResultPromise } from 'execa';
import express from 'express';
import { createGateway } from '../api/gateway/gateway.ts';
import { createLogger } from '../core/log.ts';
import { connectStore, ensureIndexes } from '../core/mongo.ts';
import { weightListOf } from '../core/routing.ts';
import { startStack } from '../stack/start-stack.ts';
import { startDualModeFixture } from '../test/support/dual-mode-fixture.ts';
import { benchConfig, benchStateDir, fmtDelta, fmtMs, heading, machineLine, onceCleanup, removeStateDir, summarize, table } from './lib/common.ts';

const CALLS = Number(process.env.BENCH_SERIAL_CALLS ?? 500);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SERVICE = 'dual';
const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '0' },
};

const log = createLogger('warn', 'bench-stateless');
const stateDir = await benchStateDir('stateless');
const config = await benchConfig(stateDir);
const children: ResultPromise[] = [];
const stack = await startStack(config, log);
const store = await connectStore(stack.mongoUri, config.mongo.database);
await ensureIndexes(store);
const gateway = createGateway({ config, store, log });
const app = express();
app.use('/mcp', gateway.router);
const server = await new Promise<import('node:http').Server>((resolve) => {
  const s = app.listen(0, '127.0.0.1', () => resolve(s));
});
const cleanup = onceCleanup(async () => {
  await gateway.close();
  server.closeAllConnections();
  server.close();
  for (const child of children) child.kill('SIGKILL');
  await Promise.allSettled(children);
  await store.db.dropDatabase().catch(() => {});
  await store.close();
  await stack.stop();
  await removeStateDir(stateDir);
});

try {
  async function fixture(version: string): Promise<string> {
    const { child, url } = await startDualModeFixture({ VERSION: version });
    children.push(child);
    return url;
  }
  const urls = { '1.0.0': await fixture('1.0.0'), '2.0.0': await fixture('2.0.0') };
  for (const [version, url] of Object.entries(urls)) {
    await store.instances.insertOne({ instanceId: `dual-${version}`, service: SERVICE, version, url, state: 'ready', restarts: 0, updatedAt: new Date() });
  }
  const setWeights = async (weights: Record<string, number>) => {
    await store.routing.replaceOne({ service: SERVICE }, { service: SERVICE, stable: '1.0.0', weights: {}, weightList: weightListOf(weights), pulled: [], stepIntervalMs: 2_000, updatedAt: new Date() }, { upsert: true });
    gateway.cache.invalidate(SERVICE);
  };
  const through = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}/mcp/${SERVICE}`;

  const request = (method: string, params: Record<string, unknown>) => ({
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: META } }),
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(method === 'tools/call' ? { 'mcp-name': String(params.name) } : {}), 'x-mcpship-client': 'bench' },
  });
  const call = request('tools/call', { name: 'whoami', arguments: {} });
  const list = request('tools/list', {});

  /** One request at a time; checks the answer so a fast error is never mistaken for a fast call. */
  async function serial(url: string, req: { body: string; headers: Record<string, string> }, expectTtl?: number): Promise<number[]> {
    const times: number[] = [];
    for (let i = 0; i < WARMUP + CALLS; i++) {
      const started = performance.now();
      const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body });
      const text = await res.text();
      const took = performance.now() - started;
      if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${text}`);
      if (expectTtl !== undefined && !text.includes(`"ttlMs":${expectTtl}`)) throw new Error(`${url}: expected ttlMs ${expectTtl} in ${text}`);
      if (i >= WARMUP) times.push(took);
    }
    return times;
  }

  const cases: { name: string; run: () => Promise<number[]> }[] = [
    { name: 'tools/call direct', run: () => serial(urls['1.0.0'], call) },
    { name: 'tools/call via gateway (one version)', run: async () => (await setWeights({ '1.0.0': 100 }), serial(through, call)) },
    { name: 'tools/list direct', run: () => serial(urls['1.0.0'], list, 60_000) },
    { name: 'tools/list via gateway (one version, untouched)', run: async () => (await setWeights({ '1.0.0': 100 }), serial(through, list, 60_000)) },
    { name: 'tools/list via gateway (50/50 canary, ttlMs capped)', run: async () => (await setWeights({ '1.0.0': 50, '2.0.0': 50 }), serial(through, list, 2_000)) },
  ];
  const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length]!);
    for (const c of order) results.get(c.name)!.push(...(await c.run()));
  }

  heading('2026-07-28 through the gateway: serial requests, one client');
  console.log(await machineLine());
  console.log(`${CALLS} requests per case and round, ${ROUNDS} rounds in rotating order, ${WARMUP} warm-up requests each`);
  const base = (name: string) => summarize(results.get(name)!);
  const rows = cases.map((c) => {
    const s = summarize(results.get(c.name)!);
    const ref = base(c.name.startsWith('tools/call') ? 'tools/call direct' : 'tools/list direct');
    return [c.name, fmtMs(s.p50), fmtMs(s.p99), c.name.includes('direct') ? '' : fmtDelta(s.p50 - ref.p50)];
  });
  console.log(table(['case', 'p50', 'p99', 'p50 vs direct'], rows));
} finally {
  await cleanup();
}
