import type { Store } from '../core/mongo.ts';

export function selfCheckActivities(store: Store) {
  return {
    /** Writes the token and reads it back; idempotent on the token. */
    async recordSelfCheck(token: string): Promise<boolean> {
      const checks = store.db.collection<{ _id: string; at: Date }>('selfchecks');
      await checks.updateOne({ _id: token }, { $setOnInsert: { at: new Date() } }, { upsert: true });
      return (await checks.findOne({ _id: token })) !== null;
    },
  };
}
