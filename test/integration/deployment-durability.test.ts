import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ResultPromise } from 'execa';
import type { EventDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { readRouting } from '../../core/routing-store.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { processesMentioning } from '../support/processes.ts';
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
  const dir = path.join(config.servicesDir, SERVICE);
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  const manifest = JSON.parse(await readFile(path.join(dir, 'mcp.json'), 'utf8'));
  await writeFile(path.join(dir, 'mcp.json'), JSON.stringify({ ...manifest, name: SERVICE, rollout: { steps: [25, 50, 100], intervalSec: 4 } }, null, 2));
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.0', 'the first version to go live');

  const from = await events.lastSeq();
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = 2;\n');
  await waitForEvent((e) => e.kind === 'CANARY_STEP' && e.version === '1.0.1', 'the canary ramp to start', from);
  worker.kill('SIGKILL');
  await worker;
  await waitFor('the killed runner\'s instances to be ended by its guardian', () => processesMentioning(path.join(config.stateDir, 'staged')).length === 0, 30_000);

  worker = startWorkerProcess(config);
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.1', 'the ramp to finish on the new worker', from);
  const ramp = (await since(from)).filter((e) => e.version === '1.0.1');
  const steps = ramp.filter((e) => e.kind === 'CANARY_STEP').map((e) => (e.details as { weight: number }).weight);
  assert.deepEqual([...new Set(steps)], [25, 50], 'the ramp went on from where it was');
  assert.equal(ramp.filter((e) => e.kind === 'PROMOTED').length, 1, 'promoted once');
  assert.equal((await store.versions.findOne({ service: SERVICE, version: '1.0.0' }))?.state, 'ARCHIVED');
  const routing = await readRouting(store, SERVICE);
  assert.equal(routing.stable, '1.0.1');
  assert.equal(routing.weights['1.0.1'], 100);
  await waitFor('the new version to serve again', async () => (await store.instances.countDocuments({ service: SERVICE, version: '1.0.1', state: 'ready' })) > 0 || undefined);
});
