/**
 * Retention: old captured messages, events, metric buckets and sessions are deleted by a cleanup
 * pass on a schedule. Not TTL indexes: FerretDB 1.24 (the embedded MongoDB) refuses them
 * ("Index option expireAfterSeconds is not implemented yet"; TTL came with FerretDB 2.0), and one
 * mechanism that behaves the same on FerretDB and MongoDB, its periods changed by configuration
 * alone, is easier to trust.
 * Every process may run it: deleting what is already gone is a no-op.
 */
import type { Config } from './config.ts';
import type { Store } from './mongo.ts';

export type RetentionSettings = Config['retention'];

export interface PurgeCounts {
  messages: number;
  events: number;
  metrics: number;
  sessions: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function cutoff(now: Date, days: number): Date | undefined {
  return days > 0 ? new Date(now.getTime() - days * DAY_MS) : undefined;
}

/** One cleanup pass as of `now`: deletes what is older than its period. */
export async function purgeExpired(store: Store, settings: RetentionSettings, now = new Date()): Promise<PurgeCounts> {
  const counts: PurgeCounts = { messages: 0, events: 0, metrics: 0, sessions: 0 };
  const messagesBefore = cutoff(now, settings.messagesDays);
  if (messagesBefore) counts.messages = (await store.messages.deleteMany({ at: { $lt: messagesBefore } })).deletedCount;
  const metricsBefore = cutoff(now, settings.metricsDays);
  if (metricsBefore) counts.metrics = (await store.metrics.deleteMany({ bucketStart: { $lt: metricsBefore } })).deletedCount;
  const sessionsBefore = cutoff(now, settings.sessionsDays);
  if (sessionsBefore) counts.sessions = (await store.sessions.deleteMany({ lastSeenAt: { $lt: sessionsBefore } })).deletedCount;
  const eventsBefore = cutoff(now, settings.eventsDays);
  if (eventsBefore) {
    // The newest event stays whatever its age: it holds the seq counter, and SSE clients resume from it.
    const newest = await store.events.find({}, { projection: { seq: 1 } }).sort({ seq: -1 }).limit(1).toArray();
    const keep = newest[0]?.seq;
    if (keep !== undefined) counts.events = (await store.events.deleteMany({ time: { $lt: eventsBefore }, seq: { $lt: keep } })).deletedCount;
  }
  return counts;
}

export interface RetentionHandle {
  /** The pass running now, or the next one started at once; for tests and shutdown. */
  runNow(): Promise<PurgeCounts>;
  stop(): Promise<void>;
}

/** Runs purgeExpired now and every `intervalMinutes`; a failed pass is logged and retried next time. */
export function startRetention(store: Store, settings: RetentionSettings, log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }): RetentionHandle {
  let running: Promise<PurgeCounts> | undefined;
  const run = (): Promise<PurgeCounts> => {
    running ??= purgeExpired(store, settings)
      .then((counts) => {
        if (counts.messages + counts.events + counts.metrics + counts.sessions > 0) log.info({ ...counts }, 'retention: old data deleted');
        return counts;
      })
      .finally(() => (running = undefined));
    return running;
  };
  const pass = () => void run().catch((err: unknown) => log.warn({ err }, 'retention pass failed; retried at the next interval'));
  const timer = setInterval(pass, settings.intervalMinutes * 60_000);
  timer.unref();
  pass();
  return {
    runNow: run,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
