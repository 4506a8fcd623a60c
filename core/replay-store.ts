/**
 * Where differential replay keeps its data in MongoDB: a report per run (`replays`), a document
 * per replayed request (`replayItems`) and one per report settled when read (`replaySettled`).
 * Kept beside core/mongo.ts's Store rather than in it, so that the replay's collections and
 * indexes stay with the one feature that writes them.
 */
import type { Collection } from 'mongodb';
import type { ReplayItemDoc, ReplayReportDoc, ReplaySettledDoc } from './documents.ts';
import type { Store } from './mongo.ts';

export interface ReplayStore {
  reports: Collection<ReplayReportDoc>;
  items: Collection<ReplayItemDoc>;
  settled: Collection<ReplaySettledDoc>;
}

const ready = new WeakSet<Store>();

export async function replayStore(store: Store): Promise<ReplayStore> {
  const reports = store.db.collection<ReplayReportDoc>('replays');
  const items = store.db.collection<ReplayItemDoc>('replayItems');
  if (!ready.has(store)) {
    await reports.createIndex({ replayId: 1 }, { unique: true });
    await reports.createIndex({ service: 1, startedAt: -1 });
    await items.createIndex({ replayId: 1, index: 1 }, { unique: true });
    ready.add(store);
  }
  return { reports, items, settled: store.db.collection<ReplaySettledDoc>('replaySettled') };
}
