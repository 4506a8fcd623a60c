import { MongoClient, MongoServerError, type Collection, type Db, type Document } from 'mongodb';
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
  // The single-field time indexes serve retention (core/retention.ts).
  sessions: [{ key: { sessionId: 1 }, unique: true }, { key: { service: 1, version: 1 } }, { key: { lastSeenAt: 1 } }],
  metrics: [{ key: { service: 1, version: 1, gatewayId: 1, bucketStart: 1 }, unique: true }, { key: { service: 1, bucketStart: 1 } }, { key: { bucketStart: 1 } }],
  messages: [
    { key: { messageId: 1 }, unique: true },
    { key: { service: 1, at: 1 } },
    { key: { sessionId: 1, at: 1 } },
    { key: { service: 1, method: 1, at: 1 } },
    { key: { at: 1 } },
  ],
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

/** Creates mcpship's indexes; safe to run on every start. */
export async function ensureIndexes(store: Store): Promise<void> {
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
        if (!(err instanceof MongoServerError && err.code === 11000) || attempt >= 50) throw err;
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
