/**
 * Dropped messages are never silent: each drop is counted, logged, and reported as a
 * `capture.messages_dropped` event per service. Drops often happen while MongoDB is away, so the
 * report waits, summed, until an event can be written.
 */
import type { NewEvent } from '../../../core/events.ts';

export const DROP_EVENT_KIND = 'capture.messages_dropped';

interface Pending {
  count: number;
  reasons: Record<string, number>;
  since: Date;
}

export interface DropSink {
  append(event: NewEvent): Promise<unknown>;
}

export class DropReporter {
  private pending = new Map<string, Pending>();
  private reporting = false;

  constructor(
    private readonly sink: DropSink | undefined,
    private readonly log?: { warn(obj: object, msg: string): void },
  ) {}

  note(service: string, count: number, reason: string, err?: unknown): void {
    if (count <= 0) return;
    const entry = this.pending.get(service) ?? { count: 0, reasons: {}, since: new Date() };
    const first = entry.count === 0;
    entry.count += count;
    entry.reasons[reason] = (entry.reasons[reason] ?? 0) + count;
    this.pending.set(service, entry);
    if (first) this.log?.warn({ service, count, reason, ...(err ? { err } : {}) }, 'captured messages dropped');
  }

  /** Writes one event per service with drops since the last report; what cannot be written waits. */
  async report(): Promise<void> {
    if (!this.sink || this.reporting || this.pending.size === 0) return;
    this.reporting = true;
    const batch = this.pending;
    this.pending = new Map();
    try {
      for (const [service, entry] of batch) {
        try {
          await this.sink.append({ service, kind: DROP_EVENT_KIND, status: 'failed', details: { count: entry.count, reasons: entry.reasons, since: entry.since.toISOString() } });
          batch.delete(service);
        } catch {
          break;
        }
      }
    } finally {
      for (const [service, entry] of batch) this.merge(service, entry);
      this.reporting = false;
    }
  }

  private merge(service: string, entry: Pending): void {
    const now = this.pending.get(service);
    if (!now) return void this.pending.set(service, entry);
    now.count += entry.count;
    now.since = entry.since;
    for (const [reason, n] of Object.entries(entry.reasons)) now.reasons[reason] = (now.reasons[reason] ?? 0) + n;
  }
}
