import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ResultPromise } from 'execa';
import type { EventDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { readRouting } from '../../core/routing-store.ts';
import { signalGroup } from '../../runner/process-group.ts';
import { membersOfGroups } from '../support/processes.ts';
import { addSampleService } from '../support/sample-service.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { startWorkerProcess } from '../support/worker-process.ts';

const SERVICE = 'durable';
const config = testConfig({ MCPSHIP_DEBOUNCE_MS: '100' });
const { mongoUri } = stackAddresses();
let store: Store;
let events: EventStore;
let worker: ResultPromise | undefined;

before(async () => {
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
  events = new EventStore(store);
});

after(async () => {
  worker?.kill('SIGTERM');
  await worker;
  await store.close();
});

const since = (afterSeq: number) => events.list({ service: SERVICE, afterSeq, limit: 500 });
function waitForEvent(match: (e: EventDoc) => boolean, what: string, afterSeq = 0): Promise<EventDoc> {
  return waitFor(what, async () => (await since(afterSeq)).find(match), 180_000, 250);
}

test('the worker killed in the middle of a ramp: a new worker continues from the same step, with one promotion', async () => {
  worker = startWorkerProcess(config);
  // No traffic here: quiet steps pass instead of holding for a person (the hold rule is tested in replay.test.ts).
  const rollout = { steps: [25, 50, 100], intervalSec: 4, analysis: { onInconclusive: 'pass' } };
  const dir = await addSampleService({ sample: 'calculator', service: SERVICE, servicesDir: config.servicesDir, stateDir: config.stateDir, manifest: { rollout } });
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.0', 'the first version to go live');

  const from = await events.lastSeq();
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = 2;\n');
  await waitForEvent((e) => e.kind === 'CANARY_STEP' && e.version === '1.0.1', 'the canary ramp to start', from);
  // Each instance leads its own process group (pid = pgid); both versions' instances run now.
  const groups = (await store.instances.find({ service: SERVICE, state: { $in: ['starting', 'ready'] } }).toArray()).map((i) => i.pid).filter((pid): pid is number => pid !== undefined);
  assert.ok(groups.length >= 2, `instances of both versions were running (${groups.length})`);
  assert.ok(membersOfGroups(groups).length >= groups.length, 'their process groups were alive before the kill');
  worker.kill('SIGKILL');
  // The process's exit, not execa's promise: that waits for the output pipes too, which a guardian
  // that failed to end (it inherits stderr) would hold open forever.
  const killed = worker;
  await waitFor('the worker to die', () => killed.exitCode !== null || killed.signalCode !== null);
  await waitFor('the killed runner\'s instance groups to be ended by its guardian', () => membersOfGroups(groups).length === 0, 30_000).catch((err: Error) => {
    const left = membersOfGroups(groups);
    for (const pgid of groups) signalGroup(pgid, 'SIGKILL'); // not left behind by a failed run
    throw new Error(`${err.message}; still alive: ${left.join(' | ')}`);
  });

  worker = startWorkerProcess(config);
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.1', 'the ramp to finish on the new worker', from);
  const ramp = (await since(from)).filter((e) => e.version === '1.0.1');
  const canarySteps = ramp.filter((e) => e.kind === 'CANARY_STEP');
  const steps = canarySteps.map((e) => (e.details as { weight: number }).weight);
  // A step's event may be written twice (an activity cut off by the kill runs again), but a
  // restarted ramp would be a second run, or show a weight going back down.
  assert.deepEqual([...new Set(canarySteps.map((e) => e.runId))].length, 1, `one workflow run for every step: ${canarySteps.map((e) => e.runId).join(', ')}`);
  assert.ok(canarySteps[0]!.runId, 'the steps name their run');
  assert.ok(steps.every((w, i) => i === 0 || w >= steps[i - 1]!), `weights never go down: ${steps.join(' → ')}`);
  assert.deepEqual([...new Set(steps)], [25, 50], 'the ramp went on from where it was');
  assert.equal(ramp.filter((e) => e.kind === 'PROMOTED').length, 1, 'promoted once');
  assert.equal((await store.versions.findOne({ service: SERVICE, version: '1.0.0' }))?.state, 'ARCHIVED');
  const routing = await readRouting(store, SERVICE);
  assert.equal(routing.stable, '1.0.1');
  assert.equal(routing.weights['1.0.1'], 100);
  await waitFor('the new version to serve again', async () => (await store.instances.countDocuments({ service: SERVICE, version: '1.0.1', state: 'ready' })) > 0 || undefined);
});
