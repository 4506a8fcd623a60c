/**
 * Per-transform counters of one gateway: runs and failures each way, and time spent. Written to
 * MongoDB (transformMetrics, one document per service, transform and gateway, full totals with
 * $set so a retried write cannot count twice) for health and the dashboard's transform success rate.
 */
import type { Collection } from 'mongodb';
import type { TransformMetricDoc } from '../core/documents.ts';
import type { StepObserver } from './chain.ts';

type Totals = Pick<TransformMetricDoc, 'forwardApplied' | 'forwardFailed' | 'backwardApplied' | 'backwardFailed' | 'durationMs'>;

export interface TransformCountersOptions {
  collection: Collection<TransformMetricDoc>;
  gatewayId: string;
  flushIntervalMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

export class TransformCounters {
  private readonly totals = new Map<string, { service: string; transformId: string; totals: Totals; dirty: boolean }>();
  private readonly startedAt = new Date();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: TransformCountersOptions) {
    this.timer = setInterval(() => void this.flush(), opts.flushIntervalMs ?? 2_000);
    this.timer.unref();
  }

  /** The observer the chain functions report to, for one service. */
  observer(service: string): StepObserver {
    return (transformId, phase, ok, durationMs) => {
      const key = `${service}\n${transformId}`;
      let entry = this.totals.get(key);
      if (!entry) {
        entry = { service, transformId, totals: { forwardApplied: 0, forwardFailed: 0, backwardApplied: 0, backwardFailed: 0, durationMs: 0 }, dirty: true };
        this.totals.set(key, entry);
      }
      const forward = phase === 'requestForward';
      if (forward) entry.totals[ok ? 'forwardApplied' : 'forwardFailed'] += 1;
      else entry.totals[ok ? 'backwardApplied' : 'backwardFailed'] += 1;
      entry.totals.durationMs += durationMs;
      entry.dirty = true;
    };
  }

  /** The counters now (this gateway only). */
  snapshot(): (Totals & { service: string; transformId: string })[] {
    return [...this.totals.values()].map((e) => ({ service: e.service, transformId: e.transformId, ...e.totals }));
  }

  flush(): Promise<void> {
    const run = this.flushing.then(async () => {
      for (const entry of this.totals.values()) {
        if (!entry.dirty) continue;
        entry.dirty = false;
        const { service, transformId } = entry;
        try {
          await this.opts.collection.updateOne(
            { service, transformId, gatewayId: this.opts.gatewayId },
            { $set: { ...entry.totals, startedAt: this.startedAt, updatedAt: new Date() } },
            { upsert: true },
          );
        } catch (err) {
          entry.dirty = true;
          this.opts.log?.warn({ err: (err as Error).message, service, transformId }, 'transform counters not written');
        }
      }
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
