/**
 * Benchmark (issue 12): what the indexes on `messages` cost per captured message in the database,
 * side by side in one run against one standalone FerretDB: the same captured `tools/call` documents
 * (shaped by capture's own shapeMessage) inserted in batches of a 1 s capture window into three
 * collections that differ only in their indexes, the collections in turn batch by batch so that
 * the machine's load falls on all alike:
 *   - the five indexes `messages` had before (messageId unique; service+at; sessionId+at;
 *     service+method+at; at);
 *   - the three ensureIndexes makes now (core/mongo.ts);
 *   - messageId alone, for reference: FerretDB 1.24 on SQLite reads no secondary index for any
 *     query (it hands SQLite only `{ _id }` filters), so on it every other index is write cost only.
 * Figure: the server's CPU time per inserted message (from /proc).
 *
 * Run: npx tsx bench/capture-indexes.ts   (or npm run bench -- capture-indexes); knobs:
 * BENCH_INDEX_BATCHES (batches per collection, 30), BENCH_INDEX_BATCH (messages per batch, 350).
 */
import os from 'node:os';
import type { Collection } from 'mongodb';
import { shapeMessage } from '../api/gateway/capture/shape.ts';
import { compileRedactPaths } from '../api/gateway/capture/redact.ts';
import type { MessageDoc } from '../core/documents.ts';
import { processCpuMs } from './lib/calculator.ts';
import { exchange } from './lib/sample-exchange.ts';
import { standaloneFerretdb } from './lib/standalone-ferretdb.ts';
import { heading, machineLine, table } from './lib/common.ts';

const BATCHES = Number(process.env.BENCH_INDEX_BATCHES ?? 30);
const BATCH = Number(process.env.BENCH_INDEX_BATCH ?? 350);

const REDACT = compileRedactPaths();

/** A batch of captured request/response pairs, as the gateway's capture shapes them. */
function batch(first: number): MessageDoc[] {
  const docs: MessageDoc[] = [];
  for (let i = first; docs.length < BATCH; i++) {
    const { ctx, request, response } = exchange(i, `session-${i % 10}`);
    const at = new Date();
    docs.push(shapeMessage({ ctx, direction: 'client_to_server', msg: request, transport: 'json', size: 80, at }, { redact: REDACT, maxPayloadBytes: 65_536 }));
    docs.push(shapeMessage({ ctx, direction: 'server_to_client', msg: response, transport: 'json', size: 80, at, toolName: 'add' }, { redact: REDACT, maxPayloadBytes: 65_536 }));
  }
  return docs;
}

async function main(): Promise<void> {
  const machine = await machineLine();
  const { store, pid: dbPid, cleanup } = await standaloneFerretdb('capture-indexes');
  try {
    const before = store.db.collection<MessageDoc>('messages_five_indexes');
    await before.createIndex({ messageId: 1 }, { unique: true });
    for (const key of [{ service: 1, at: 1 }, { sessionId: 1, at: 1 }, { service: 1, method: 1, at: 1 }, { at: 1 }] as Record<string, 1>[]) await before.createIndex(key);
    const uniqueOnly = store.db.collection<MessageDoc>('messages_unique_only');
    await uniqueOnly.createIndex({ messageId: 1 }, { unique: true });
    const variants: { name: string; collection: Collection<MessageDoc>; cpuMs: number; messages: number }[] = [
      { name: '5 indexes (before)', collection: before, cpuMs: 0, messages: 0 },
      { name: `${(await store.messages.listIndexes().toArray()).length - 1} indexes (now, ensureIndexes)`, collection: store.messages, cpuMs: 0, messages: 0 },
      { name: 'messageId unique only (reference)', collection: uniqueOnly, cpuMs: 0, messages: 0 },
    ];
    for (let b = 0; b < BATCHES; b++) {
      // The order turns each batch, so that none of them always follows the same one.
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(b + k) % variants.length]!;
        const docs = batch(b * BATCH);
        const cpu0 = await processCpuMs(dbPid);
        await v.collection.insertMany(docs);
        v.cpuMs += (await processCpuMs(dbPid)) - cpu0;
        v.messages += docs.length;
      }
    }
    heading(`messages indexes in FerretDB: ${BATCHES} insertMany batches of ${BATCH} captured messages per collection, in turn`);
    console.log(machine);
    const base = variants[0]!;
    console.log(
      table(
        ['collection', 'messages', 'FerretDB CPU per message', 'vs before'],
        variants.map((v) => [v.name, String(v.messages), `${((v.cpuMs / v.messages) * 1000).toFixed(0)} µs`, `${(v.cpuMs / v.messages / (base.cpuMs / base.messages)).toFixed(2)}×`]),
      ),
    );
    console.log('(_id is indexed in every collection besides these; CPU read in 10 ms ticks per batch)');
    console.log(`${new Date().toISOString()}: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min) at the end`);
  } finally {
    await cleanup();
  }
}

await main();
