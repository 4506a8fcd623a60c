/**
 * The replay activity keeps its attempt alive from its start: a capture that takes longer to load
 * than the heartbeat timeout (34,000 messages on a loaded FerretDB took more than 30 s) must not get
 * the attempt cancelled. The activity runs against the real FerretDB; its ticker's clock is mocked
 * and moved on while the capture's query is in flight (seen by the driver's command monitoring).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { replayActivities, type ReplayParams } from '../../activities/replay.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
let store: Store;

before(async () => {
  const uri = new URL(stackAddresses().mongoUri);
  uri.searchParams.set('monitorCommands', 'true');
  store = await connectStore(uri.toString(), config.mongo.database);
  await ensureIndexes(store);
});

after(async () => {
  await store.db.dropDatabase();
  await store.close();
});

test('the replay activity heartbeats while its capture is still loading', async (t) => {
  const params: ReplayParams = {
    replayId: 'heartbeat-from-start',
    service: 'hb',
    candidate: '1.0.1',
    baseline: '1.0.0',
    candidateDir: config.stateDir,
    selection: { since: new Date(0).toISOString(), until: new Date().toISOString(), sampleSize: 10 },
    allowTools: [],
    concurrency: 1,
    thresholds: { maxBreakingShare: 0, maxDifferingShare: 0, minMessages: 1 },
    total: 0,
  };
  const timeline: string[] = [];
  const env = new MockActivityEnvironment();
  env.on('heartbeat', () => timeline.push('heartbeat'));
  let captureQuery: number | undefined;
  t.mock.timers.enable({ apis: ['setInterval'] });
  store.client.on('commandStarted', (e) => {
    if (e.commandName !== 'find' || e.command.find !== 'messages') return;
    captureQuery = e.requestId;
    timeline.push('capture query sent');
    // The ticker's interval passes before FerretDB answers.
    t.mock.timers.tick(2_000);
  });
  store.client.on('commandSucceeded', (e) => {
    if (e.requestId === captureQuery) timeline.push('capture loaded');
  });

  // No baseline folder: the activity ends once the capture is loaded, before any instance starts.
  await env.run(replayActivities({ config, store, events: new EventStore(store) }).runReplay, params);
  assert.deepEqual(timeline, ['capture query sent', 'heartbeat', 'capture loaded']);
});
