/**
 * A capture spill with MongoDB really stopped (a FerretDB of this file's own, which holds the
 * event store too, as in production): the spill is one `capture.spilling` and one
 * `capture.recovered` however many messages waited, written once MongoDB is back, and the alert
 * evaluator fires the captureSpilling alert on them and resolves it after holdSec.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { AlertEvaluator } from '../../alerts/evaluator.ts';
import { alertCollections } from '../../alerts/store.ts';
import { CaptureWriter } from '../../api/gateway/capture.ts';
import { RECOVERED_EVENT_KIND, SPILLING_EVENT_KIND } from '../../api/gateway/capture/spill-events.ts';
import type { MessageDoc } from '../../core/documents.ts';
import { ALERT_EVENT_KINDS, EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes } from '../../core/mongo.ts';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const cleanup: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

const size = (m: unknown) => Buffer.byteLength(JSON.stringify(m));

function roundTrip(w: CaptureWriter, n: number): void {
  const ctx = { service: 'spilly', version: '1.0.0', instanceId: 'i-1', sessionId: `s-${n % 3}`, startedAt: performance.now() };
  const req = { jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: 'add', arguments: { a: n, b: 1 } } };
  const res = { jsonrpc: '2.0', id: n, result: { content: [{ type: 'text', text: String(n + 1) }] } };
  w.message(ctx, 'client_to_server', req, 'json', size(req));
  w.message(ctx, 'server_to_client', res, 'json', size(res));
}

test('MongoDB stopped: one capture.spilling and one capture.recovered for 400 spilled messages, and the captureSpilling alert fires, then resolves', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-spill-alert-'));
  const port = await freePort();
  const debugPort = await freePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  let ferret: ManagedProcess = launchFerretdb({ stateDir: dir, port, debugPort });
  cleanup.push(async () => {
    await ferret.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'FerretDB answers ping');
  const store = await connectStore(uri, 'spill_alert');
  cleanup.push(() => store.close());
  await ensureIndexes(store);
  const events = new EventStore(store);
  // The writer's own client gives up on a stopped server after 1 s (connectStore waits 10 s), only to keep the test short.
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1_000 });
  cleanup.push(() => client.close());
  const w = new CaptureWriter({ messages: client.db('spill_alert').collection<MessageDoc>('messages'), spillDir: path.join(dir, 'capture-spill'), events, retryMs: 200, spillSettleMs: 500 });
  cleanup.push(() => w.close());

  for (let i = 0; i < 5; i++) roundTrip(w, i);
  await w.flush();
  assert.equal(w.counters.written, 10);

  const stoppedAt = Date.now();
  await ferret.stop();
  // 400 messages in bursts, with write cycles (and the writer's timer) running in between.
  for (let burst = 0; burst < 10; burst++) {
    for (let i = 0; i < 20; i++) roundTrip(w, 5 + burst * 20 + i);
    await w.flush();
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(w.counters.spillPending, 400);

  ferret = launchFerretdb({ stateDir: dir, port, debugPort });
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'FerretDB answers ping again');
  const recovered = await waitFor('capture.recovered', async () => (await events.list({ kind: RECOVERED_EVENT_KIND }))[0], 120_000, 200);
  const spills = await events.list({ service: 'mcpship' });
  assert.deepEqual(
    spills.map((e) => e.kind),
    [SPILLING_EVENT_KIND, RECOVERED_EVENT_KIND],
    'one event each, not one per message',
  );
  const spilling = spills[0]!;
  assert.equal(spilling.details?.reason, 'MongoDB unavailable');
  assert.ok(Date.parse(String(spilling.details?.since)) >= stoppedAt - 1_000, 'since: when the spill began, not when the event could be written');
  assert.ok(spilling.time.getTime() >= Date.parse(String(spilling.details?.since)));
  assert.deepEqual({ spilled: recovered.details?.spilled, replayed: recovered.details?.replayed, dropped: recovered.details?.dropped }, { spilled: 400, replayed: 400, dropped: 0 });
  assert.equal(recovered.status, 'ok');
  assert.equal(await store.messages.countDocuments({ service: 'spilly' }), 410);

  const config = testConfig();
  const connection = await Connection.connect({ address: stackAddresses().temporalAddress });
  cleanup.push(() => connection.close());
  const evaluator = new AlertEvaluator({ config, store, events, temporal: new Client({ connection, namespace: config.temporal.namespace }), log: createLogger('warn') });
  cleanup.push(() => evaluator.stop());
  const { alerts } = await alertCollections(store);
  await evaluator.tick(new Date());
  const fired = await alerts.findOne({ alertId: 'captureSpilling/mcpship' });
  assert.equal(fired?.state, 'firing', 'the spill began and ended between two passes, and is still told');
  assert.match(fired!.summary, /^capture spilled on .+ from .+ to .+: 400 messages, 400 replayed, 0 dropped$/);
  assert.equal((await events.list({ kind: ALERT_EVENT_KINDS.firing })).length, 1);

  await evaluator.tick(new Date(recovered.time.getTime() + (config.alerts.rules.captureSpilling.holdSec + 1) * 1000));
  assert.equal((await alerts.findOne({ alertId: 'captureSpilling/mcpship' }))?.state, 'resolved');
  assert.equal((await events.list({ kind: ALERT_EVENT_KINDS.resolved })).length, 1);
});
