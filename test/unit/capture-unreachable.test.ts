/**
 * The capture's "unreachable, not refused" classifier against the errors the mongodb driver really
 * throws when FerretDB goes away: writes under way when it is killed, writes while it is down, and
 * a client closed under the writer. Every one must mean "spill and retry", never "quarantine".
 * (A FerretDB of its own, killed: the test stack's cannot be.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MongoBulkWriteError, MongoClient, type Collection } from 'mongodb';
import { isUnreachable, storeBatch } from '../../api/gateway/capture/store-batch.ts';
import type { MessageDoc } from '../../core/documents.ts';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';

let dir: string;
let ferret: ManagedProcess;
let client: MongoClient;
let messages: Collection<MessageDoc>;

function doc(i: number): MessageDoc {
  const raw = JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'add', arguments: { a: i, pad: 'x'.repeat(2_000) } } });
  return { messageId: randomUUID(), service: 's', version: '1', direction: 'client_to_server', kind: 'request', raw, truncated: false, redacted: false, size: raw.length, at: new Date(), transport: 'json' };
}

function describe(err: unknown): string {
  const e = err as Error & { errorResponse?: unknown };
  const inner = e.errorResponse instanceof Error ? ` wrapping ${e.errorResponse.constructor.name}` : '';
  return `${e.constructor.name}${inner}: ${e.message}`;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-unreachable-'));
  const port = await freePort();
  ferret = launchFerretdb({ stateDir: dir, port, debugPort: await freePort() });
  const uri = `mongodb://127.0.0.1:${port}/`;
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'FerretDB answers ping');
  client = new MongoClient(uri, { serverSelectionTimeoutMS: 1_000 });
  messages = client.db('unreachable').collection<MessageDoc>('messages');
  await messages.insertMany([doc(-1)]);
});

after(async () => {
  await client.close();
  await ferret.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('every error of a write to a FerretDB that was killed or is down is classified unreachable', async () => {
  const errors: unknown[] = [];
  const write = (docs: MessageDoc[]) => messages.insertMany(docs.map((d) => ({ ...d })), { ordered: false }).then(() => undefined, (err: unknown) => void errors.push(err));
  // Large unordered writes under way while it dies: closed connections, broken pipes, a cleared pool.
  const inFlight = Array.from({ length: 6 }, (_, k) => write(Array.from({ length: 1_500 }, (_, i) => doc(k * 10_000 + i))));
  await new Promise((r) => setImmediate(r));
  await ferret.stop(0);
  await Promise.all(inFlight);
  // While it is down: refused connections (wrapped by the bulk write), server selection, index creation.
  for (let i = 0; i < 3; i++) await write([doc(i)]);
  await messages.insertOne({ ...doc(99) }).catch((err: unknown) => errors.push(err));
  await messages.createIndex({ messageId: 1 }, { unique: true }).catch((err: unknown) => errors.push(err));

  assert.ok(errors.length >= 5, `${errors.length} errors`);
  assert.ok(
    errors.some((e) => e instanceof MongoBulkWriteError && /ECONNREFUSED/.test(e.message)),
    'the case that was quarantined: a bulk write wrapping a refused connection',
  );
  const misread = errors.filter((e) => !isUnreachable(e)).map(describe);
  assert.deepEqual(misread, [], 'all mean "away", none "refused"');

  // Through the capture's batch writer: nothing quarantined, everything handed back for the spill.
  const batch = Array.from({ length: 20 }, (_, i) => doc(100 + i));
  const result = await storeBatch(messages, batch, { timeoutMs: 30_000 });
  assert.deepEqual({ stored: result.stored, quarantined: result.quarantined, dropped: result.dropped.length, unwritten: result.unwritten.length }, { stored: 0, quarantined: 0, dropped: 0, unwritten: 20 });

  const closed = new MongoClient('mongodb://127.0.0.1:1/');
  await closed.close();
  const err = await closed.db('x').collection('m').insertMany([{ a: 1 }]).then(() => undefined, (e: unknown) => e);
  assert.ok(err, 'a closed client refuses');
  assert.equal(isUnreachable(err), true, describe(err));
});
