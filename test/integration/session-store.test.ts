/**
 * The session table's documents in the real FerretDB: keyed by the session id (the only lookup
 * FerretDB 1.24 answers without decoding the whole collection), and the documents of an earlier
 * release, keyed by an ObjectId with a `sessionId` field, re-keyed when the store is prepared.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ObjectId } from 'mongodb';
import { SessionTable, type SessionRoute } from '../../api/gateway/session-table.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const config = testConfig();
let store: Store;
let legacy: Store;

const ROUTE: SessionRoute = { service: 'calc', version: '1.0.0', instanceId: 'calc-1', protocolVersion: '2025-11-25' };
const routeOf = (r: SessionRoute): SessionRoute => ({ service: r.service, version: r.version, instanceId: r.instanceId, ...(r.protocolVersion ? { protocolVersion: r.protocolVersion } : {}) });

before(async () => {
  store = await connectStore(stackAddresses().mongoUri, config.mongo.database);
  await ensureIndexes(store);
  // A database of its own, as an earlier release left it.
  legacy = await connectStore(stackAddresses().mongoUri, `${config.mongo.database}_legacy`);
});

after(async () => {
  for (const s of [store, legacy]) {
    await s.db.dropDatabase();
    await s.close();
  }
});

test('a session is stored under its id as _id, and found there by a gateway that never saw it', async () => {
  await new SessionTable(store).open('session-a', ROUTE);
  const doc = await store.sessions.findOne({ _id: 'session-a' });
  assert.ok(doc, 'the document is keyed by the session id');
  assert.deepEqual(routeOf(doc), ROUTE);
  assert.ok(!('sessionId' in doc), 'the id is not stored twice');
  assert.equal(doc.closedAt, undefined);

  const other = new SessionTable(store);
  const found = await other.get('session-a');
  assert.deepEqual(found && routeOf(found), ROUTE);
  await other.close('session-a');
  assert.ok((await store.sessions.findOne({ _id: 'session-a' }))?.closedAt, 'closed for every gateway');
  assert.equal(await new SessionTable(store).get('session-a'), undefined);
  assert.equal(await store.sessions.countDocuments({}), 1, 'open, get and close wrote one document');
});

test('an id opened again after its close is one document again open, on the new route, its createdAt kept', async () => {
  const table = new SessionTable(store);
  await table.open('session-b', ROUTE);
  const first = await store.sessions.findOne({ _id: 'session-b' });
  await table.close('session-b');
  const moved: SessionRoute = { service: 'calc', version: '2.0.0', instanceId: 'calc-2' };
  await table.open('session-b', moved);
  const doc = await store.sessions.findOne({ _id: 'session-b' });
  assert.ok(doc && first);
  assert.equal(doc.closedAt, undefined, 'open again');
  assert.deepEqual(routeOf(doc), { ...moved, protocolVersion: ROUTE.protocolVersion });
  assert.deepEqual(doc.createdAt, first.createdAt);
  assert.deepEqual(routeOf((await new SessionTable(store).get('session-b'))!), { ...moved, protocolVersion: ROUTE.protocolVersion });
  assert.equal(await store.sessions.countDocuments({ _id: 'session-b' }), 1);
});

test('sessions an earlier release stored under an ObjectId are re-keyed by their id on start, once, and its sessionId index dropped', async () => {
  const sessions = legacy.db.collection('sessions');
  await sessions.createIndex({ sessionId: 1 }, { unique: true });
  await legacy.db.collection('messages').createIndex({ service: 1, method: 1, at: 1 });
  const t = new Date('2026-11-01T10:00:00Z');
  const closedAt = new Date('2026-11-01T11:00:00Z');
  await sessions.insertMany([
    { _id: new ObjectId(), sessionId: 'old-open', service: 'calc', version: '1.0.0', instanceId: 'calc-1', createdAt: t, lastSeenAt: t, protocolVersion: '2025-06-18' },
    { _id: new ObjectId(), sessionId: 'old-closed', service: 'calc', version: '1.0.0', instanceId: 'calc-1', createdAt: t, lastSeenAt: t, closedAt },
  ]);

  await ensureIndexes(legacy);
  const docs = await legacy.sessions.find({}).sort({ _id: 1 }).toArray();
  assert.deepEqual(docs, [
    { _id: 'old-closed', service: 'calc', version: '1.0.0', instanceId: 'calc-1', createdAt: t, lastSeenAt: t, closedAt },
    { _id: 'old-open', service: 'calc', version: '1.0.0', instanceId: 'calc-1', createdAt: t, lastSeenAt: t, protocolVersion: '2025-06-18' },
  ]);
  const indexNames = async (name: string) => (await legacy.db.collection(name).listIndexes().toArray()).map((i) => i.name as string);
  assert.ok(!(await indexNames('sessions')).includes('sessionId_1'), 'the unique sessionId index is gone');
  assert.ok(!(await indexNames('messages')).includes('service_1_method_1_at_1'), 'a retired messages index is gone');

  // The gateway finds the open one and refuses the closed one, as before the upgrade.
  const table = new SessionTable(legacy);
  assert.equal((await table.get('old-open'))?.protocolVersion, '2025-06-18');
  assert.equal(await table.get('old-closed'), undefined);

  // A second start changes nothing.
  await ensureIndexes(legacy);
  assert.deepEqual(await legacy.sessions.find({}).sort({ _id: 1 }).toArray(), docs);
});
