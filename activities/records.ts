import type { EventStore, NewEvent } from '../core/events.ts';
import type { Store } from '../core/mongo.ts';
import type { ValidationOutcome } from '../core/pipeline.ts';

/** The writes a workflow needs for its own bookkeeping: events and the service's last validation. */
export function recordActivities(deps: { store: Store; events: EventStore }) {
  return {
    async recordEvent(event: NewEvent): Promise<void> {
      await deps.events.append(event);
    },

    async recordValidation(service: string, outcome: ValidationOutcome): Promise<void> {
      const lastValidation = {
        hash: outcome.hash,
        ok: outcome.ok,
        at: new Date(),
        ...(outcome.ok ? { version: outcome.version } : { reason: outcome.reason }),
      };
      await deps.store.services.updateOne(
        { name: service },
        { $set: { lastValidation, lastHash: outcome.hash, updatedAt: new Date() }, $setOnInsert: { name: service, state: 'PRESENT' } },
        { upsert: true },
      );
    },
  };
}
