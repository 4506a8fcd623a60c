import { MongoClient, MongoServerError, type Collection, type Db, type Document } from 'mongodb';
import { isDuplicateKey } from './insert-absent.ts';
import { rekeyLegacySessions } from './legacy-sessions.ts';
import type { CompatCellDoc, EventDoc, InstanceDoc, MessageDoc, MetricBucketDoc, NodeDoc, PlacementDoc, PoolDoc, RoutingDoc, RoutingRevisionDoc, ServiceDoc, SessionDoc, TransformMetricDoc, VersionDoc } from './documents.ts';

/** Typed handles on mcpship's collections; every module reaches MongoDB through these. */
export interface Store {
  client: MongoClient;
  db: Db;
  events: Collection<EventDoc>;
  versions: Collection<VersionDoc>;
  services: Collection<ServiceDoc>;
  pools: Collection<PoolDoc>;
  instances: Collection<InstanceDoc>;
  nodes: Collection<NodeDoc>;
  placements: Collection<PlacementDoc>;
  routing: Collection<RoutingDoc>;
  routingRevisions: Collection<RoutingRevisionDoc>;
  sessions: Collection<SessionDoc>;
  metrics: Collection<MetricBucketDoc>;
  messages: Collection<MessageDoc>;
  compatCells: Collection<CompatCellDoc>;
  transformMetrics: Collection<TransformMetricDoc>;
  close(): Promise<void>;
}

const INDEXES: Record<string, { key: Document; unique?: boolean }[]> = {
  events: [{ key: { seq: 1 }, unique: true }, { key: { service: 1, seq: 1 } }, { key: { kind: 1, seq: 1 } }, { key: { time: 1 } }],
  versions: [{ key: { service: 1, version: 1 }, unique: true }, { key: { service: 1, hash: 1 } }, { key: { state: 1 } }],
  services: [{ key: { name: 1 }, unique: true }],
  pools: [{ key: { service: 1, version: 1 }, unique: true }],
  instances: [{ key: { instanceId: 1 }, unique: true }, { key: { service: 1, version: 1, state: 1 } }, { key: { nodeId: 1, state: 1 } }],
  nodes: [{ key: { nodeId: 1 }, unique: true }],
  placements: [{ key: { service: 1, version: 1, slot: 1 }, unique: true }, { key: { nodeId: 1 } }],
  routing: [{ key: { service: 1 }, unique: true }],
  routingRevisions: [{ key: { service: 1, rev: 1 }, unique: true }],
  // The single-field time indexes serve retention (core/retention.ts). A session is looked up by
  // `_id`, its id; service + version: open sessions per version (api/routes/traffic.ts,
  // api/routes/dashboard.ts); lastSeenAt: also the open-sessions gauge (api/platform-metrics.ts).
  sessions: [{ key: { service: 1, version: 1 } }, { key: { lastSeenAt: 1 } }],
  metrics: [{ key: { service: 1, version: 1, gatewayId: 1, bucketStart: 1 }, unique: true }, { key: { service: 1, bucketStart: 1 } }, { key: { bucketStart: 1 } }],
  // Every index costs each captured message a write (≈ 16 µs of FerretDB CPU each, docs/performance.md).
  // messageId: capture's inserts are idempotent by it (a replayed journal or spill). service + at:
  // a replay's capture window (activities/replay.ts, version filtered), the round-trip sample
  // newest first (activities/transforms.ts), the dashboard's client names. at: retention.
  messages: [{ key: { messageId: 1 }, unique: true }, { key: { service: 1, at: 1 } }, { key: { at: 1 } }],
  compatCells: [{ key: { service: 1, version: 1, source: 1, columnKey: 1 }, unique: true }],
  transformMetrics: [{ key: { service: 1, transformId: 1, gatewayId: 1 }, unique: true }],
};

export async function connectStore(uri: string, database: string): Promise<Store> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  const db = client.db(database);
  return {
    client,
    db,
    events: db.collection<EventDoc>('events'),
    versions: db.collection<VersionDoc>('versions'),
    services: db.collection<ServiceDoc>('services'),
    pools: db.collection<PoolDoc>('pools'),
    instances: db.collection<InstanceDoc>('instances'),
    nodes: db.collection<NodeDoc>('nodes'),
    placements: db.collection<PlacementDoc>('placements'),
    routing: db.collection<RoutingDoc>('routing'),
    routingRevisions: db.collection<RoutingRevisionDoc>('routingRevisions'),
    sessions: db.collection<SessionDoc>('sessions'),
    metrics: db.collection<MetricBucketDoc>('metrics'),
    messages: db.collection<MessageDoc>('messages'),
    compatCells: db.collection<CompatCellDoc>('compatCells'),
    transformMetrics: db.collection<TransformMetricDoc>('transformMetrics'),
    close: () => client.close(),
  };
}

/**
 * Indexes earlier releases created that no query uses now: dropped on start, since every index
 * costs each write. `sessions.sessionId_1` went when sessions were keyed by `_id`; the messages
 * ones were never read by any query.
 */
const RETIRED_INDEXES: Record<string, string[]> = {
  sessions: ['sessionId_1'],
  messages: ['sessionId_1_at_1', 'service_1_method_1_at_1'],
};

/** Drops the retired indexes that exist; returns the `collection.index` names it found. */
async function dropRetiredIndexes(store: Store): Promise<Set<string>> {
  const found = new Set<string>();
  for (const [name, retired] of Object.entries(RETIRED_INDEXES)) {
    const existing = await store.db
      .collection(name)
      .listIndexes()
      .toArray()
      .catch((err: unknown) => {
        if (err instanceof MongoServerError && err.code === NAMESPACE_NOT_FOUND) return [];
        throw err;
      });
    for (const index of existing) {
      if (!retired.includes(index.name as string)) continue;
      found.add(`${name}.${index.name as string}`);
      // Another process starting at the same time may have dropped it first.
      await store.db
        .collection(name)
        .dropIndex(index.name as string)
        .catch((err: unknown) => {
          if (!(err instanceof MongoServerError && err.code === INDEX_NOT_FOUND)) throw err;
        });
    }
  }
  return found;
}

const NAMESPACE_NOT_FOUND = 26;
const INDEX_NOT_FOUND = 27;

/**
 * Creates mcpship's indexes, drops retired ones and re-keys sessions of an earlier release; safe
 * to run on every start, and in two processes at once.
 */
export async function ensureIndexes(store: Store): Promise<void> {
  // The unique sessionId index goes before the re-keying: re-keyed documents have no sessionId,
  // which MongoDB would index as one duplicate null after another.
  const retired = await dropRetiredIndexes(store);
  if (retired.has('sessions.sessionId_1')) await rekeyLegacySessions(store.db);
  for (const [name, specs] of Object.entries(INDEXES)) {
    for (const spec of specs) {
      await store.db.collection(name).createIndex(spec.key, spec.unique ? { unique: true } : {});
    }
  }
}

/**
 * Inserts a document under the next `seq` of its collection. FerretDB does not apply `$inc` under
 * findOneAndUpdate atomically, but it does enforce unique indexes, so the number is claimed by the
 * insert itself: a writer that loses the race reads the new maximum and tries the next number.
 * Within one process, writers queue, so races only happen between processes.
 */
export function seqInserter<T extends { seq: number }>(collection: Collection<T>) {
  let last: number | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const readMax = async () => {
    const top = await collection.find({}, { projection: { seq: 1 } }).sort({ seq: -1 }).limit(1).toArray();
    return (top[0]?.seq as number | undefined) ?? 0;
  };
  const insert = async (doc: Omit<T, 'seq'>): Promise<T> => {
    let seq = (last ?? (await readMax())) + 1;
    for (let attempt = 0; ; attempt++) {
      const full = { ...doc, seq } as T;
      try {
        await collection.insertOne(full as Parameters<typeof collection.insertOne>[0]);
        last = seq;
        return full;
      } catch (err) {
        if (!isDuplicateKey(err) || attempt >= 50) throw err;
        seq = (await readMax()) + 1;
      }
    }
  };
  return (doc: Omit<T, 'seq'>): Promise<T> => {
    const result = queue.then(() => insert(doc));
    queue = result.catch(() => undefined);
    return result;
  };
}
