/**
 * Retention against the real FerretDB: the cleanup pass deletes what is older than each
 * collection's period and nothing else; 0 keeps data forever; the newest event always stays.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { MessageDoc } from '../../core/documents.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { purgeExpired, startRetention } from '../../core/retention.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
let store: Store;
const DAY = 24 * 60 * 60 * 1000;
const NOW = new Date('2026-11-01T00:00:00Z');
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

before(async () => {
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
});

after(async () => {
  await store.db.dropDatabase();
  await store.close();
});

function message(at: Date): MessageDoc {
  return { messageId: randomUUID(), service: 'r', version: '1', direction: 'client_to_server', kind: 'notification', raw: '{}', truncated: false, redacted: false, size: 2, at, transport: 'json' };
}

async function seed(): Promise<void> {
  await store.messages.insertMany([message(ago(20)), message(ago(15)), message(ago(1))]);
  await store.events.insertMany([
    { seq: 1, time: ago(200), service: 'r', kind: 'x', status: 'info' },
    { seq: 2, time: ago(100), service: 'r', kind: 'x', status: 'info' },
    { seq: 3, time: ago(10), service: 'r', kind: 'x', status: 'info' },
  ]);
  const bucket = (start: Date, gatewayId: string) => ({ service: 'r', version: '1', gatewayId, bucketStart: start, bucketMs: 10_000, requests: 1, failures: 0, httpErrors: 0, rpcErrors: 0, toolErrors: 0, timeouts: 0, latencyHist: [], latencySumMs: 0 });
  await store.metrics.insertMany([bucket(ago(40), 'g1'), bucket(ago(2), 'g1')] as never[]);
  const session = (_id: string, lastSeenAt: Date) => ({ _id, service: 'r', version: '1', instanceId: 'i', createdAt: lastSeenAt, lastSeenAt });
  await store.sessions.insertMany([session('old', ago(8)), session('recent', ago(0.5))]);
}

test('a pass deletes what is older than each period, and keeps the rest and the newest event', async () => {
  await seed();
  const counts = await purgeExpired(store, config.retention, NOW); // defaults: 14 / 90 / 30 / 7 days
  assert.deepEqual(counts, { messages: 2, events: 2, metrics: 1, sessions: 1 });
  assert.deepEqual((await store.messages.find({ service: 'r' }).toArray()).map((d) => d.at.getTime()), [ago(1).getTime()]);
  assert.deepEqual((await store.events.find({}).toArray()).map((d) => d.seq), [3]);
  assert.deepEqual((await store.sessions.find({}).toArray()).map((d) => d._id), ['recent']);
  assert.equal(await store.metrics.countDocuments({}), 1);

  // Much later: everything is old, but the newest event holds the seq counter and stays.
  const later = await purgeExpired(store, config.retention, new Date(NOW.getTime() + 365 * DAY));
  assert.deepEqual(later, { messages: 1, events: 0, metrics: 1, sessions: 1 });
  assert.deepEqual((await store.events.find({}).toArray()).map((d) => d.seq), [3]);
});

test('a period of 0 keeps data forever; the schedule runs a pass as soon as it starts', async () => {
  await store.messages.deleteMany({});
  await store.events.deleteMany({});
  await seed();
  const keep = { ...config.retention, messagesDays: 0, eventsDays: 0, metricsDays: 0, sessionsDays: 0 };
  assert.deepEqual(await purgeExpired(store, keep, NOW), { messages: 0, events: 0, metrics: 0, sessions: 0 });
  assert.equal(await store.messages.countDocuments({}), 3);

  const logged: object[] = [];
  const handle = startRetention(store, { ...keep, messagesDays: 5 }, { info: (o) => logged.push(o), warn: () => {} });
  await handle.runNow(); // joins the pass the schedule started, or runs one more
  await handle.stop();
  // The seeded messages are all more than 5 days older than the real clock.
  assert.equal(await store.messages.countDocuments({}), 0);
  assert.equal(await store.events.countDocuments({}), 3, 'other periods still 0: kept');
  assert.ok(logged.some((o) => (o as { messages?: number }).messages === 3), 'what was deleted is logged');
});
