import { EventEmitter } from 'node:events';
import type { Filter } from 'mongodb';
import type { EventDoc } from './documents.ts';
import { seqInserter, type Store } from './mongo.ts';

export type NewEvent = Omit<EventDoc, 'seq' | 'time'> & { time?: Date };

export interface EventQuery {
  service?: string;
  kind?: string;
  /** Only events with a larger seq (a cursor, or the SSE Last-Event-ID). */
  afterSeq?: number;
  /** Only events at or after this time. */
  since?: Date;
  limit?: number;
}

export const MAX_EVENT_PAGE = 500;

/** Alert transitions in the event stream (alerts/evaluator.ts); details carry the alert. */
export const ALERT_EVENT_KINDS = { pending: 'ALERT_PENDING', firing: 'ALERT_FIRING', resolved: 'ALERT_RESOLVED', silenced: 'ALERT_SILENCED', silenceEnded: 'ALERT_SILENCE_ENDED' } as const;

/**
 * The event store: every step of every run is appended here, and anyone in any process can read
 * or follow it. Following polls MongoDB by seq (FerretDB has no change streams), woken early by
 * appends made in this same process.
 */
export class EventStore {
  private readonly insert: (doc: Omit<EventDoc, 'seq'>) => Promise<EventDoc>;
  private readonly local = new EventEmitter();

  constructor(private readonly store: Store) {
    this.insert = seqInserter(store.events);
    this.local.setMaxListeners(0);
  }

  async append(event: NewEvent): Promise<EventDoc> {
    const doc = await this.insert({ ...event, time: event.time ?? new Date() });
    this.local.emit('appended');
    return doc;
  }

  async list(query: EventQuery): Promise<EventDoc[]> {
    const filter: Filter<EventDoc> = {};
    if (query.service) filter.service = query.service;
    if (query.kind) filter.kind = query.kind;
    if (query.afterSeq !== undefined) filter.seq = { $gt: query.afterSeq };
    if (query.since) filter.time = { $gte: query.since };
    const limit = Math.min(Math.max(query.limit ?? 100, 1), MAX_EVENT_PAGE);
    return this.store.events.find(filter, { projection: { _id: 0 } }).sort({ seq: 1 }).limit(limit).toArray();
  }

  async lastSeq(): Promise<number> {
    const [top] = await this.store.events.find({}, { projection: { seq: 1 } }).sort({ seq: -1 }).limit(1).toArray();
    return top?.seq ?? 0;
  }

  /**
   * Calls onEvent for every event after afterSeq matching the query, in seq order, until the
   * returned function is called.
   */
  follow(query: Omit<EventQuery, 'afterSeq' | 'limit'>, afterSeq: number, onEvent: (e: EventDoc) => void, pollMs = 250): () => void {
    let cursor = afterSeq;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running = false;
    const tick = async () => {
      if (stopped || running) return;
      running = true;
      clearTimeout(timer);
      try {
        for (;;) {
          const page = await this.list({ ...query, afterSeq: cursor, limit: MAX_EVENT_PAGE });
          for (const event of page) {
            if (stopped) return;
            cursor = event.seq;
            onEvent(event);
          }
          if (page.length < MAX_EVENT_PAGE) break;
        }
      } catch {
        // MongoDB away for a moment: the next tick reads from the same cursor, so nothing is skipped.
      } finally {
        running = false;
        if (!stopped) timer = setTimeout(() => void tick(), pollMs);
      }
    };
    const wake = () => void tick();
    this.local.on('appended', wake);
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      this.local.off('appended', wake);
    };
  }
}
