/**
 * Benchmark (issue 12): what one session-table write or lookup costs the MongoDB-wire server as the
 * `sessions` collection grows, in one run against one standalone FerretDB, for three shapes:
 * 1. before the third session: an ObjectId `_id`, a `sessionId` field with a unique index, filters on `sessionId`;
 * 2. keyed by `_id` = session id, a new session opened by an upsert (the third session);
 * 3. now: keyed by `_id`, a new session opened by the session table itself
 *    (api/gateway/session-table.ts: an insert, an update only when the id is there).
 * FerretDB 1.24 on SQLite hands SQLite only a filter that is exactly `{ _id: <string> }`; any other
 * filter is answered by reading and decoding every document. Even `{ _id }` is a scan in SQLite,
 * while an insert's uniqueness check uses its index. Its `explain` of the lookups is printed.
 *
 * The four operations are those the gateway makes: open (a new id), get (a lookup on a gateway that
 * does not hold the session), touch (lastSeenAt) and close. Before each size the collections are
 * filled to it; the operations then run one at a time, the shapes in turn in blocks (forwards,
 * then backwards), so that the machine's load drifts over all alike. Figures: the server's CPU time
 * per operation (from /proc, 10 ms ticks) and the wall time per operation.
 *
 * Run: npx tsx bench/session-store.ts   (or npm run bench -- session-store); knobs:
 * BENCH_SESSION_DOCS (sizes, `1000,5000,10000`), BENCH_SESSION_OPS (operations of each kind per
 * shape and size, 40).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Collection, Document } from 'mongodb';
import { SessionTable } from '../api/gateway/session-table.ts';
import type { SessionDoc } from '../core/documents.ts';
import { processCpuMs } from './lib/calculator.ts';
import { standaloneFerretdb } from './lib/standalone-ferretdb.ts';
import { heading, machineLine, table } from './lib/common.ts';

const SIZES = (process.env.BENCH_SESSION_DOCS ?? '1000,5000,10000').split(',').map(Number);
const OPS = Number(process.env.BENCH_SESSION_OPS ?? 40);
/** Operations of one kind run in this many alternating blocks per shape. */
const BLOCKS = 4;
const FILL_BATCH = 500;

type Op = 'open' | 'get' | 'touch' | 'close';
const OP_NAMES: Op[] = ['open', 'get', 'touch', 'close'];

/** One shape of the session document: how it is filled and the filters of each operation. */
interface Shape {
  name: string;
  collectionName: string;
  fill(ids: string[], now: Date): Promise<unknown>;
  run(op: Op, id: string): Promise<unknown>;
}

const ROUTE = { service: 'calc', version: '1.0.0', instanceId: 'calc-1' };

/** The shape before: what session-table.ts sent up to a22cf25. */
function bySessionId(collection: Collection<Document>): Shape {
  return {
    name: 'sessionId field (before)',
    collectionName: collection.collectionName,
    fill: (ids, now) => collection.insertMany(ids.map((sessionId) => ({ sessionId, ...ROUTE, protocolVersion: '2025-11-25', createdAt: now, lastSeenAt: now }))),
    run: (op, sessionId) => {
      const now = new Date();
      switch (op) {
        case 'open':
          return collection.updateOne(
            { sessionId },
            { $set: { ...ROUTE, lastSeenAt: now, protocolVersion: '2025-11-25' }, $setOnInsert: { sessionId, createdAt: now }, $unset: { closedAt: '' } },
            { upsert: true },
          );
        case 'get':
          return collection.findOne({ sessionId }, { projection: { _id: 0 } });
        case 'touch':
          return collection.updateOne({ sessionId, closedAt: { $exists: false } }, { $set: { lastSeenAt: now } });
        case 'close':
          return collection.updateOne({ sessionId, closedAt: { $exists: false } }, { $set: { closedAt: now } });
      }
    },
  };
}

/**
 * Keyed by `{ _id }` alone. `table`: open goes through the session table itself (an insert, an
 * update when the id is there), as the gateway sends it now; else the upsert of the third session.
 */
function byId(collection: Collection<SessionDoc>, table?: SessionTable): Shape {
  return {
    name: table ? '_id, open as insert (now)' : '_id, open as upsert (before)',
    collectionName: collection.collectionName,
    fill: (ids, now) => collection.insertMany(ids.map((_id) => ({ _id, ...ROUTE, protocolVersion: '2025-11-25', createdAt: now, lastSeenAt: now }))),
    run: (op, _id) => {
      const now = new Date();
      switch (op) {
        case 'open':
          if (table) return table.open(_id, { ...ROUTE, protocolVersion: '2025-11-25' });
          return collection.updateOne({ _id }, { $set: { ...ROUTE, lastSeenAt: now, protocolVersion: '2025-11-25' }, $setOnInsert: { createdAt: now }, $unset: { closedAt: '' } }, { upsert: true });
        case 'get':
          return collection.findOne({ _id });
        case 'touch':
          return collection.updateOne({ _id }, { $set: { lastSeenAt: now } });
        case 'close':
          return collection.updateOne({ _id }, { $set: { closedAt: now } });
      }
    },
  };
}

interface Cost {
  cpuMs: number;
  wallMs: number;
  ops: number;
}

async function main(): Promise<void> {
  const machine = await machineLine();
  const { store, pid: dbPid, cleanup } = await standaloneFerretdb('session-store');
  try {
    // Now: the collection as ensureIndexes makes it. Before: the indexes it had then.
    const old = store.db.collection('sessions_by_sessionId');
    await old.createIndex({ sessionId: 1 }, { unique: true });
    await old.createIndex({ service: 1, version: 1 });
    await old.createIndex({ lastSeenAt: 1 });
    const upserted = store.db.collection<SessionDoc>('sessions_upserted');
    const shapes = [bySessionId(old), byId(upserted), byId(store.sessions, new SessionTable(store))];
    const ids = new Map<Shape, string[]>(shapes.map((s) => [s, []]));
    const rows: { size: number; op: Op; costs: Cost[] }[] = [];

    for (const size of SIZES) {
      for (const shape of shapes) {
        const held = ids.get(shape)!;
        while (held.length < size) {
          const now = new Date();
          const batch = Array.from({ length: Math.min(FILL_BATCH, size - held.length) }, () => randomUUID());
          await shape.fill(batch, now);
          held.push(...batch);
        }
      }
      console.error(`${size} documents in each collection; measuring…`);
      for (const op of OP_NAMES) {
        const costs = new Map<Shape, Cost>(shapes.map((s) => [s, { cpuMs: 0, wallMs: 0, ops: 0 }]));
        for (let block = 0; block < BLOCKS; block++) {
          for (const shape of block % 2 === 0 ? shapes : [...shapes].reverse()) {
            const held = ids.get(shape)!;
            const targets = Array.from({ length: Math.ceil(OPS / BLOCKS) }, (_, i) => (op === 'open' ? randomUUID() : held[(block * 7919 + i * 104_729) % held.length]!));
            const cost = costs.get(shape)!;
            const cpu0 = await processCpuMs(dbPid);
            const t0 = performance.now();
            for (const id of targets) await shape.run(op, id);
            cost.wallMs += performance.now() - t0;
            cost.cpuMs += (await processCpuMs(dbPid)) - cpu0;
            cost.ops += targets.length;
            if (op === 'open') held.push(...targets);
          }
        }
        rows.push({ size, op, costs: shapes.map((s) => costs.get(s)!) });
      }
    }

    const explain = async (shape: Shape, filter: Document) => {
      const r = (await store.db.command({ explain: { find: shape.collectionName, filter } })) as { filterPushdown?: boolean; queryPlanner?: unknown };
      return `filterPushdown ${String(r.filterPushdown)}, plan ${JSON.stringify(r.queryPlanner)}`;
    };
    const oneId = (s: Shape) => ids.get(s)![0]!;

    heading(`session table in FerretDB: one operation at a time, ${OPS} of each kind per shape and size`);
    console.log(machine);
    const ms = (v: number, c: Cost) => `${(v / c.ops).toFixed(2)} ms`;
    console.log(
      table(
        ['documents', 'operation', ...shapes.map((s, i) => `FerretDB CPU, ${i + 1}`), '1 ÷ 3', '2 ÷ 3', ...shapes.map((s, i) => `wall, ${i + 1}`)],
        rows.map((r) => {
          const now = r.costs[2]!;
          return [String(r.size), r.op, ...r.costs.map((c) => ms(c.cpuMs, c)), ...r.costs.slice(0, 2).map((c) => (now.cpuMs > 0 ? `${(c.cpuMs / c.ops / (now.cpuMs / now.ops)).toFixed(1)}×` : 'no tick in 3')), ...r.costs.map((c) => ms(c.wallMs, c))];
        }),
      ),
    );
    console.log(`\n${shapes.map((s, i) => `${i + 1} = ${s.name}`).join('; ')}. CPU is read in 10 ms ticks per block of ${Math.ceil(OPS / BLOCKS)} operations.`);
    const [before, , now] = shapes as [Shape, Shape, Shape];
    console.log(`explain find, before: ${await explain(before, { sessionId: oneId(before) })}`);
    console.log(`explain find, now:    ${await explain(now, { _id: oneId(now) })}`);
    console.log(`explain find, now with a second condition: ${await explain(now, { _id: oneId(now), closedAt: { $exists: false } })}`);
    console.log(`${new Date().toISOString()}: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min) at the end`);
  } finally {
    await cleanup();
  }
}

await main();
