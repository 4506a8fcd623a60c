/**
 * The capture writer's storage rules without a database: batches refused by a collection that
 * behaves like MongoDB (a whole batch refused for one bad document, or the server away), and the
 * journal's rules on a real folder.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MongoNetworkError, MongoServerError, type Collection } from 'mongodb';
import { DropReporter, DROP_EVENT_KIND } from '../../api/gateway/capture/drops.ts';
import { Journal, type JournalEntry } from '../../api/gateway/capture/journal.ts';
import { isUnreachable, storeBatch, WriteTimeoutError } from '../../api/gateway/capture/store-batch.ts';
import type { MessageDoc } from '../../core/documents.ts';
import type { NewEvent } from '../../core/events.ts';

function doc(raw: string, service = 's'): MessageDoc {
  return { messageId: randomUUID(), service, version: '1', direction: 'client_to_server', kind: 'request', raw, truncated: false, redacted: false, size: raw.length, at: new Date(0), transport: 'json' };
}

function linesOnDisk(dir: string): string[] {
  return readdirSync(dir)
    .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => (JSON.parse(l) as MessageDoc).messageId);
}

function bytesOnDisk(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + statSync(path.join(dir, f)).size, 0);
}

/** Stores documents; refuses any write holding a "poison" document the way a server refuses a whole command. */
class ScriptedCollection {
  stored: MessageDoc[] = [];
  calls = 0;
  away = false;
  constructor(private readonly poison: (d: MessageDoc) => boolean) {}
  private check(docs: MessageDoc[]) {
    this.calls++;
    if (this.away) throw new MongoNetworkError('connect ECONNREFUSED');
    if (docs.some(this.poison)) throw new MongoServerError({ message: 'BSONObj size is invalid', code: 10334 });
  }
  async insertMany(docs: MessageDoc[]) {
    this.check(docs);
    this.stored.push(...docs);
  }
  async insertOne(d: MessageDoc) {
    this.check([d]);
    this.stored.push(d);
  }
  as(): Collection<MessageDoc> {
    return this as unknown as Collection<MessageDoc>;
  }
}

test('a refused batch is split until the refused message is alone; it is quarantined with the reason and the rest stored', async () => {
  const docs = Array.from({ length: 64 }, (_, i) => doc(i === 17 || i === 40 ? `poison ${i}` : `{"id":${i}}`));
  // The quarantine record keeps the text cut to 1 MiB; here the text itself is the poison, so the
  // record refuses too for message 40 (a longer one) and is counted as dropped.
  const coll = new ScriptedCollection((d) => d.raw.startsWith('poison') && !(d.quarantine && d.raw === 'poison 17'));
  const result = await storeBatch(coll.as(), docs, { timeoutMs: 10_000 });
  assert.equal(result.stored, 62);
  assert.equal(result.quarantined, 1);
  assert.deepEqual(
    result.dropped.map((d) => d.doc.raw),
    ['poison 40'],
  );
  assert.match(result.dropped[0]!.reason, /BSONObj size is invalid \(code 10334\); quarantine record refused too/);
  assert.deepEqual(result.unwritten, []);
  const q = coll.stored.find((d) => d.quarantine)!;
  assert.equal(q.raw, 'poison 17');
  assert.match(q.quarantine!.reason, /BSONObj size is invalid \(code 10334\)/);
  assert.equal(coll.stored.filter((d) => !d.quarantine).length, 62, 'every good message stored, none blocked');
  assert.ok(coll.calls < 40, `split by halves, not one by one (${coll.calls} calls)`);
});

test('a database that is away is not a refusal: nothing is quarantined and everything comes back unwritten', async () => {
  const coll = new ScriptedCollection(() => false);
  coll.away = true;
  const docs = Array.from({ length: 10 }, (_, i) => doc(`{"id":${i}}`));
  const result = await storeBatch(coll.as(), docs, { timeoutMs: 10_000 });
  assert.deepEqual({ stored: result.stored, quarantined: result.quarantined, dropped: result.dropped.length }, { stored: 0, quarantined: 0, dropped: 0 });
  assert.equal(result.unwritten.length, 10);
  assert.equal(isUnreachable(new WriteTimeoutError('slow')), true);
  assert.equal(isUnreachable(new MongoServerError({ message: 'interrupted at shutdown', code: 11600 })), true);
  assert.equal(isUnreachable(new MongoServerError({ message: 'not authorized', code: 13 })), true, 'refuses every write: wait, do not quarantine');
  assert.equal(isUnreachable(new MongoServerError({ message: 'bad key', code: 2 })), false);
  assert.equal(isUnreachable(new RangeError('Maximum call stack size exceeded')), false);
  // As the driver passes on a socket error it did not wrap itself (seen when FerretDB is killed mid-write).
  assert.equal(isUnreachable(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' })), true);
});

test('the journal holds every message when append returns, stays within its byte bound, and empties what is stored', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-journal-'));
  try {
    const journal = new Journal({ dir, writerId: 'w', segmentBytes: 4_096, maxBytes: 20_000 });
    const docs = Array.from({ length: 100 }, (_, i) => doc(JSON.stringify({ id: i, pad: 'x'.repeat(300) })));
    const results = docs.map((d) => journal.append(d, 'memory'));
    const entries = results.filter((r): r is JournalEntry => typeof r !== 'string');
    assert.ok(entries.length > 0 && entries.length < 100);
    assert.ok(results.slice(entries.length).every((r) => r === 'spill full'), 'the first ones kept, the rest refused');
    assert.deepEqual(linesOnDisk(dir), docs.slice(0, entries.length).map((d) => d.messageId), 'on disk synchronously, in order');
    assert.equal(journal.diskBytes, bytesOnDisk(dir));
    assert.ok(journal.diskBytes <= 20_000, `within the bound: ${journal.diskBytes}`);
    assert.equal(journal.pending, 0, 'memory segments are not the spill');

    for (const e of entries) journal.stored(e);
    assert.deepEqual(linesOnDisk(dir), [], 'stored: emptied');
    assert.equal(journal.diskBytes, bytesOnDisk(dir));
    assert.equal(typeof journal.append(docs[99]!, 'memory'), 'object', 'room again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('memory segments let go become the spill; a replay skips the lines already stored and deletes the files', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcpship-journal-'));
  try {
    const journal = new Journal({ dir, writerId: 'w', segmentBytes: 2_048, maxBytes: 1 << 20 });
    const docs = Array.from({ length: 30 }, (_, i) => doc(JSON.stringify({ id: i, pad: 'x'.repeat(100) })));
    const entries = docs.map((d) => journal.append(d, 'memory') as JournalEntry);
    const storedEarly = new Set([0, 1, 2, 10, 29]);
    for (const i of storedEarly) journal.stored(entries[i]!);
    journal.toSpill();
    assert.equal(journal.pending, 25);
    const late = doc('{"late":true}');
    journal.append(late, 'spill');
    journal.stored(entries[5]!); // a write under way when the buffer was let go
    storedEarly.add(5);
    assert.equal(journal.pending, 25);

    const replayed: MessageDoc[] = [];
    assert.equal(await journal.replay(4, async (batch) => (replayed.push(...batch), true)), true);
    assert.deepEqual(
      replayed.map((d) => d.messageId),
      [...docs.filter((_, i) => !storedEarly.has(i)), late].map((d) => d.messageId),
    );
    assert.ok(replayed.every((d) => d.at instanceof Date));
    assert.equal(journal.pending, 0);
    assert.equal(journal.diskBytes, 0);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drops become one event per service, held back (summed) while events cannot be written', async () => {
  const written: NewEvent[] = [];
  let up = false;
  const reporter = new DropReporter({
    append: async (e: NewEvent) => {
      if (!up) throw new Error('MongoDB away');
      written.push(e);
    },
  });
  reporter.note('a', 3, 'spill full');
  reporter.note('b', 1, 'spill write failed');
  await reporter.report();
  assert.equal(written.length, 0);
  reporter.note('a', 2, 'spill full');
  up = true;
  await reporter.report();
  assert.deepEqual(
    written.map((e) => [e.service, e.kind, e.status, (e.details as { count: number }).count, (e.details as { reasons: object }).reasons]),
    [
      ['a', DROP_EVENT_KIND, 'failed', 5, { 'spill full': 5 }],
      ['b', DROP_EVENT_KIND, 'failed', 1, { 'spill write failed': 1 }],
    ],
  );
  await reporter.report();
  assert.equal(written.length, 2, 'reported once');
});
