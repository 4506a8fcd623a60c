import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MetricsRecorder, readHealth, readServiceHealth } from '../../api/gateway/metrics.ts';
import type { ExchangeOutcome } from '../../api/gateway/traffic.ts';
import { LATENCY_BOUNDS_MS } from '../../core/health.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
const { mongoUri } = stackAddresses();
let store: Store;

before(async () => {
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
});

after(async () => {
  await store.db.dropDatabase();
  await store.close();
});

const OK: ExchangeOutcome = { httpStatus: 200, latencyMs: 8, timedOut: false, rpcErrors: 0, toolErrors: 0 };

/** Recorders on a fake clock, so that buckets and windows fall where the test says. */
function recorder(gatewayId: string, clock: { t: number }) {
  return new MetricsRecorder({ store, gatewayId, clock: () => clock.t, flushIntervalMs: 0 });
}

function send(r: MetricsRecorder, service: string, version: string, outcome: ExchangeOutcome, n: number, methods = ['tools/call']) {
  for (let i = 0; i < n; i++) r.exchangeEnd({ service, version, instanceId: `${version}-0`, sessionId: `s${i % 3}`, methods, startedAt: 0 }, outcome);
}

test('exchanges from two gateways become buckets in MongoDB, and health() sums them per version', async () => {
  const clock = { t: Date.parse('2030-01-01T00:00:03.000Z') };
  const a = recorder('gw-a', clock);
  const b = recorder('gw-b', clock);

  send(a, 'calc', '1.0.0', OK, 30);
  send(a, 'calc', '1.0.0', { ...OK, toolErrors: 1 }, 5);
  send(a, 'calc', '1.0.0', { ...OK, httpStatus: 500, rpcErrors: 1 }, 3);
  send(a, 'calc', '1.0.0', { ...OK, httpStatus: 504, timedOut: true, latencyMs: 30_000 }, 2);
  send(b, 'calc', '1.0.0', OK, 10);
  send(b, 'calc', '2.0.0', { ...OK, rpcErrors: 2 }, 4);
  send(b, 'calc', '2.0.0', { ...OK, httpStatus: 404 }, 1); // the client's fault: not counted at all
  send(b, 'calc', '2.0.0', OK, 20, ['initialize']); // proves nothing about the version: not counted
  send(b, 'other', '1.0.0', OK, 7);
  await Promise.all([a.flush(), b.flush()]);

  // Later exchanges in the same bucket: the document gets the new totals, not a second copy.
  send(a, 'calc', '1.0.0', OK, 10);
  await a.flush();
  await a.flush();

  const docs = await store.metrics.find({ service: 'calc' }).toArray();
  assert.equal(docs.length, 3, 'one bucket per version and gateway');
  for (const d of docs) {
    assert.equal(d.bucketMs, 10_000);
    assert.equal(d.bucketStart.toISOString(), '2030-01-01T00:00:00.000Z');
    assert.equal(d.latencyHist.length, LATENCY_BOUNDS_MS.length + 1);
  }
  assert.deepEqual(docs.map((d) => `${d.version}/${d.gatewayId}/${d.requests}`).sort(), ['1.0.0/gw-a/50', '1.0.0/gw-b/10', '2.0.0/gw-b/4']);

  const health = await a.health('calc');
  assert.equal(health.service, 'calc');
  assert.deepEqual(Object.keys(health.versions), ['1.0.0', '2.0.0']);
  const v1 = health.versions['1.0.0']!.last60s;
  assert.equal(v1.requests, 60);
  assert.equal(v1.failures, 10);
  assert.equal(v1.toolErrors, 5);
  assert.equal(v1.rpcErrors, 3);
  assert.equal(v1.httpErrors, 5);
  assert.equal(v1.unanswered, 5, 'the 5xx and the timeouts');
  assert.equal(v1.timeouts, 2);
  assert.equal(v1.successRate, 50 / 60);
  assert.equal(v1.errorRate, 10 / 60);
  assert.ok(v1.p50Ms! > 7.5 && v1.p50Ms! <= 10, `p50 ${v1.p50Ms}`);
  assert.ok(v1.p95Ms! > 7.5 && v1.p95Ms! <= 10, `p95 ${v1.p95Ms}`);
  assert.ok(v1.p99Ms! > 20_000 && v1.p99Ms! <= 30_000, `p99 ${v1.p99Ms}: the timeouts are the slowest 2 of 60`);
  assert.equal(v1.meanMs, (58 * 8 + 2 * 30_000) / 60);
  assert.equal(v1.buckets, 2);
  assert.deepEqual(health.versions['1.0.0']!.last5m, { ...v1, since: health.versions['1.0.0']!.last5m.since });

  const v2 = health.versions['2.0.0']!.last60s;
  assert.equal(v2.requests, 4);
  assert.equal(v2.failures, 4);
  assert.equal(v2.rpcErrors, 8);
  assert.equal(v2.httpErrors, 0);
  assert.equal(v2.errorRate, 1);
});

test('the last minute and the last five minutes are told apart; readHealth reads one version since a time', async () => {
  const t = Date.parse('2031-06-01T12:00:00.000Z');
  const clock = { t: t - 3 * 60_000 };
  const r = recorder('gw-c', clock);
  send(r, 'svc', '1.0.0', { ...OK, toolErrors: 1 }, 6); // three minutes ago: all failed
  clock.t = t - 5_000;
  send(r, 'svc', '1.0.0', OK, 4); // five seconds ago: all fine
  send(r, 'svc', '1.1.0', OK, 2);
  clock.t = t;
  await r.close();

  const health = await readServiceHealth(store, 'svc', t);
  const v = health.versions['1.0.0']!;
  assert.equal(v.last60s.requests, 4);
  assert.equal(v.last60s.errorRate, 0);
  assert.equal(v.last5m.requests, 10);
  assert.equal(v.last5m.failures, 6);
  assert.equal(v.last5m.successRate, 0.4);

  const recent = await readHealth(store, 'svc', '1.0.0', t - 60_000, t);
  assert.equal(recent.requests, 4);
  assert.equal(recent.version, '1.0.0');
  assert.equal(recent.since.getTime(), t - 60_000);
  const all = await readHealth(store, 'svc', '1.0.0', t - 10 * 60_000, t);
  assert.equal(all.requests, 10);
  assert.equal(all.toolErrors, 6);
  const other = await readHealth(store, 'svc', '1.1.0', t - 60_000, t);
  assert.equal(other.requests, 2);

  const none = await readHealth(store, 'svc', '1.0.0', t + 60_000, t + 120_000);
  assert.equal(none.requests, 0);
  assert.equal(none.successRate, null);
  assert.equal(none.errorRate, null);
  assert.equal(none.p99Ms, null);
});

test('a bucket that began before `since` counts whole (windows are bucket-aligned)', async () => {
  const clock = { t: Date.parse('2032-01-01T00:00:08.000Z') };
  const r = recorder('gw-d', clock);
  send(r, 'aligned', '1.0.0', OK, 3);
  await r.close();
  const h = await readHealth(store, 'aligned', '1.0.0', Date.parse('2032-01-01T00:00:09.000Z'), Date.parse('2032-01-01T00:00:20.000Z'));
  assert.equal(h.requests, 3);
  const later = await readHealth(store, 'aligned', '1.0.0', Date.parse('2032-01-01T00:00:10.000Z'), Date.parse('2032-01-01T00:00:20.000Z'));
  assert.equal(later.requests, 0);
});
