/**
 * The session table's answer to FerretDB's SQLITE_BUSY: the write is sent again (it was rolled
 * back), a bounded number of times; any other failure is not retried. A new session is an insert;
 * an id already stored (duplicate key) is the same write as an update. The collection is a stand-in
 * that fails as FerretDB 1.24 does, so that the lock conflict happens on demand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MongoServerError } from 'mongodb';
import { SessionTable } from '../../api/gateway/session-table.ts';
import type { Store } from '../../core/mongo.ts';

const BUSY = '[msg_update.go:133 handler.(*Handler).updateDocument] [collection.go:135 sqlite.(*collection).InsertAll.func1] database is locked (5) (SQLITE_BUSY)';

/** A sessions collection whose writes fail with `errors` in turn, then succeed. */
function failingSessions(errors: string[]) {
  const calls: { op: string; _id: unknown }[] = [];
  const answer = (op: string, _id: unknown) => {
    calls.push({ op, _id });
    const errmsg = errors.shift();
    if (errmsg) throw new MongoServerError({ message: errmsg, errmsg, code: errmsg.startsWith('E11000') ? 11000 : 1, codeName: 'InternalError', ok: 0 });
  };
  const sessions = {
    insertOne: async (doc: { _id: unknown }) => {
      answer('insertOne', doc._id);
      return { acknowledged: true, insertedId: doc._id };
    },
    updateOne: async (filter: { _id: unknown }) => {
      answer('updateOne', filter._id);
      return { acknowledged: true, matchedCount: 1, modifiedCount: 1, upsertedCount: 0, upsertedId: null };
    },
  } as unknown as Store['sessions'];
  const warnings: string[] = [];
  const table = new SessionTable({ sessions }, { log: { warn: (_obj, msg) => warnings.push(msg) } });
  return { table, calls, warnings };
}

const ROUTE = { service: 'calc', version: '1.0.0', instanceId: 'calc-1' };

test('a session write FerretDB refused as SQLITE_BUSY is sent again, and the session is saved', async () => {
  const { table, calls, warnings } = failingSessions([BUSY, BUSY]);
  await table.open('s1', ROUTE);
  assert.deepEqual(calls, [
    { op: 'insertOne', _id: 's1' },
    { op: 'insertOne', _id: 's1' },
    { op: 'insertOne', _id: 's1' },
  ]);
  assert.deepEqual(warnings, []);
});

test('SQLITE_BUSY three times running, or any other failure, is not retried further', async () => {
  const busy = failingSessions([BUSY, BUSY, BUSY, BUSY]);
  await busy.table.open('s1', ROUTE);
  assert.equal(busy.calls.length, 3);
  assert.deepEqual(busy.warnings, ['session not saved to MongoDB; only this gateway knows it']);

  const other = failingSessions(['E11000 duplicate key error']);
  await assert.rejects(other.table.close('s1'), /E11000/);
  assert.equal(other.calls.length, 1);
});

test('a session id already stored is opened again by an update, and a busy update is sent again as the whole write', async () => {
  const { table, calls, warnings } = failingSessions(['E11000 duplicate key error', BUSY]);
  await table.open('s1', ROUTE);
  assert.deepEqual(calls, [
    { op: 'insertOne', _id: 's1' },
    { op: 'updateOne', _id: 's1' },
    { op: 'insertOne', _id: 's1' },
  ]);
  assert.deepEqual(warnings, []);
});
