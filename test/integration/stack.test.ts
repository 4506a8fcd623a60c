import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoServerError } from 'mongodb';
import { EventStore } from '../../core/events.ts';
import { createLogger } from '../../core/log.ts';
import { connectStore, ensureIndexes, seqInserter, type Store } from '../../core/mongo.ts';
import { SEARCH_ATTRIBUTE_NAMES } from '../../core/search-attributes.ts';
import { startStack } from '../../stack/start-stack.ts';
import { temporalReady } from '../../stack/temporal.ts';
import { startWorker, type WorkerHandle } from '../../workers/create-worker.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
const { temporalAddress, mongoUri } = stackAddresses();
let store: Store;
let worker: WorkerHandle;

before(async () => {
  store = await connectStore(mongoUri, config.mongo.database);
  worker = await startWorker(temporalAddress, { config, store, events: new EventStore(store) });
});

after(async () => {
  await worker.shutdown();
  await store.db.dropDatabase();
  await store.close();
});

test('the Temporal namespace answers and the search attributes are registered', async () => {
  assert.equal(await temporalReady(temporalAddress, config.temporal.namespace), true);
  const connection = await Connection.connect({ address: temporalAddress });
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: config.temporal.namespace });
    for (const name of SEARCH_ATTRIBUTE_NAMES) assert.ok(customAttributes && name in customAttributes, `${name} is registered`);
  } finally {
    await connection.close();
  }
});

test('a workflow completes through a real worker, and its activity reaches MongoDB', async () => {
  const connection = await Connection.connect({ address: temporalAddress });
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const token = randomUUID();
    const result = await client.workflow.execute('selfCheckWorkflow', {
      taskQueue: config.temporal.taskQueue,
      workflowId: `self-check/${token}`,
      args: [token],
    });
    assert.deepEqual(result, { token, roundTrip: true });
    const doc = await store.db.collection<{ _id: string }>('selfchecks').findOne({ _id: token });
    assert.ok(doc, 'the activity wrote its document');
  } finally {
    await connection.close();
  }
});

test('MongoDB driver CRUD and index creation work against the wire server', async () => {
  await ensureIndexes(store);
  const indexes = await store.versions.listIndexes().toArray();
  const unique = indexes.find((i) => i.key.service === 1 && i.key.version === 1);
  assert.equal(unique?.unique, true);

  const now = new Date();
  const doc = { service: 'crud', version: '1.0.0', state: 'STAGED' as const, hash: 'h1', files: [], steps: [], tools: {}, createdAt: now, updatedAt: now, history: [] };
  await store.versions.insertOne({ ...doc });
  await assert.rejects(store.versions.insertOne({ ...doc }), (err: unknown) => err instanceof MongoServerError && err.code === 11000);
  await store.versions.updateOne({ service: 'crud', version: '1.0.0' }, { $set: { state: 'CANARY' } });
  assert.equal((await store.versions.findOne({ service: 'crud' }))?.state, 'CANARY');
  assert.equal((await store.versions.deleteOne({ service: 'crud', version: '1.0.0' })).deletedCount, 1);
  assert.equal(await store.versions.countDocuments({ service: 'crud' }), 0);
});

test('seq numbers stay unique and gap-free across two writers on the same collection', async () => {
  await ensureIndexes(store);
  const otherStore = await connectStore(mongoUri, config.mongo.database);
  try {
    const writers = [seqInserter(store.events), seqInserter(otherStore.events)];
    const base = { time: new Date(), service: 'seq', kind: 'TEST', status: 'info' as const };
    const docs = await Promise.all(Array.from({ length: 40 }, (_, i) => writers[i % 2]!(base)));
    const seqs = docs.map((d) => d.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.equal(await store.events.countDocuments({ service: 'seq' }), 40);
  } finally {
    await otherStore.close();
  }
});

test('with TEMPORAL_ADDRESS and MONGODB_URI set, nothing is started and those are used', async () => {
  const stack = await startStack(config, createLogger('silent'));
  try {
    assert.equal(stack.processes.length, 0);
    assert.equal(stack.temporalAddress, temporalAddress);
    assert.equal(stack.mongoUri, mongoUri);
    assert.equal(stack.temporalUiUrl, undefined);
  } finally {
    await stack.stop();
  }
});
