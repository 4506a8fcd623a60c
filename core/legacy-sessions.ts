/**
 * Session documents written before sessions were keyed by their id: `{ _id: ObjectId, sessionId, … }`.
 * The gateway now looks a session up by `_id` alone (core/documents.ts SessionDoc), so such a
 * document would never be found again and its client would get 404 and start over. Re-keying them
 * once, when the store is prepared, keeps open sessions across the upgrade.
 */
import type { Collection, Db, ObjectId } from 'mongodb';
import { insertAbsent } from './insert-absent.ts';
import type { SessionDoc } from './documents.ts';

interface LegacySessionDoc extends Omit<SessionDoc, '_id'> {
  _id: ObjectId;
  sessionId: string;
}

const BATCH = 500;

/**
 * Copies every old-shaped session under its session id, then deletes the old documents. Safe to
 * run twice or in two processes at once: a copy that exists already (another process made it, or a
 * gateway touched the session meanwhile) is left as it is, and only old-shaped documents are deleted.
 * Returns how many documents were old-shaped.
 */
export async function rekeyLegacySessions(db: Db): Promise<number> {
  const sessions = db.collection<SessionDoc>('sessions');
  const legacy = db.collection<LegacySessionDoc>('sessions');
  const filter = { sessionId: { $exists: true } } as const;
  let seen = 0;
  let batch: SessionDoc[] = [];
  for await (const { _id: _old, sessionId, ...rest } of legacy.find(filter)) {
    seen++;
    batch.push({ ...rest, _id: sessionId });
    if (batch.length >= BATCH) {
      await insertAbsent(sessions, batch);
      batch = [];
    }
  }
  if (batch.length > 0) await insertAbsent(sessions, batch);
  if (seen > 0) await legacy.deleteMany(filter);
  return seen;
}
