/**
 * Health monitors per version: every exchange that counts for health (core/health.ts
 * countsForHealth: work requests, and anything left unanswered) lands in a 10 s time bucket that
 * is written to MongoDB off the hot path (what the API, the dashboard and the deployment workflow
 * read). The circuit breaker keeps its own in-memory windows (breaker.ts).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { AnyBulkWriteOperation } from 'mongodb';
import type { MetricBucketDoc } from '../../core/documents.ts';
import { addExchange, countsForHealth, emptyCounts, mergeCounts, summarize, type HealthCounts, type HealthStats } from '../../core/health.ts';
import type { Store } from '../../core/mongo.ts';
import type { ExchangeContext, ExchangeOutcome, TrafficObserver } from './traffic.ts';

export interface MetricsRecorderOptions {
  /** Where buckets go. */
  store: Pick<Store, 'metrics'>;
  /** One writer per bucket document: two gateways must never share an id. */
  gatewayId?: string;
  /** Size of the MongoDB time buckets. */
  bucketMs?: number;
  /** How often buckets are written; 0 leaves it to flush() calls. */
  flushIntervalMs?: number;
  /** Wall clock in ms (Date.now); buckets are stored by it, so it must be one all gateways share. */
  clock?: () => number;
  /** Unwritten buckets kept while MongoDB is away; the oldest go first beyond this. */
  maxPendingBuckets?: number;
  log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

interface PendingBucket {
  service: string;
  version: string;
  bucketStart: number;
  counts: HealthCounts;
  /** Bumped on every change, so a flush that raced with new exchanges leaves the bucket dirty. */
  rev: number;
  flushedRev: number;
}

export interface VersionHealth extends HealthStats {
  service: string;
  version: string;
  since: Date;
  until: Date;
  /** Bucket documents summed (over time and gateways). */
  buckets: number;
}

export interface ServiceHealth {
  service: string;
  at: Date;
  versions: Record<string, { last60s: VersionHealth; last5m: VersionHealth }>;
}

const keyOf = (...parts: (string | number)[]) => parts.join('\u0000');

export class MetricsRecorder implements TrafficObserver {
  readonly gatewayId: string;
  private readonly bucketMs: number;
  private readonly clock: () => number;
  private readonly maxPendingBuckets: number;
  private readonly pending = new Map<string, PendingBucket>();
  private readonly timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private failing = false;
  /** Buckets given up while MongoDB was away too long; the API shows it so a gap is explained. */
  droppedBuckets = 0;

  constructor(private readonly opts: MetricsRecorderOptions) {
    this.gatewayId = opts.gatewayId ?? `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.bucketMs = opts.bucketMs ?? 10_000;
    this.clock = opts.clock ?? Date.now;
    this.maxPendingBuckets = opts.maxPendingBuckets ?? 10_000;
    const every = opts.flushIntervalMs ?? 1_000;
    if (every > 0) {
      // A failed timed flush keeps its buckets for the next tick; the failure is logged once.
      this.timer = setInterval(() => this.flush().catch(() => undefined), every);
      this.timer.unref();
    }
  }

  // Errors arrive already summed in the exchange's outcome; nothing to do per message.
  message(): void {}

  exchangeEnd(ctx: ExchangeContext, outcome: ExchangeOutcome): void {
    try {
      if (countsForHealth(ctx.methods, outcome)) this.addToBucket(ctx.service, ctx.version, this.clock(), outcome);
    } catch {
      // Never let bookkeeping fail a proxied request.
    }
  }

  private addToBucket(service: string, version: string, now: number, outcome: ExchangeOutcome): void {
    const bucketStart = Math.floor(now / this.bucketMs) * this.bucketMs;
    const key = keyOf(service, version, bucketStart);
    let bucket = this.pending.get(key);
    if (!bucket) {
      bucket = { service, version, bucketStart, counts: emptyCounts(), rev: 0, flushedRev: 0 };
      this.pending.set(key, bucket);
      while (this.pending.size > this.maxPendingBuckets) {
        const oldest = this.pending.keys().next().value as string;
        this.pending.delete(oldest);
        this.droppedBuckets += 1;
      }
    }
    addExchange(bucket.counts, outcome);
    bucket.rev += 1;
  }

  /**
   * Writes every changed bucket. Each write sets the bucket's full totals (not $inc), so a retry
   * after an unclear failure cannot count twice. Flushes queue behind each other.
   */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.flushOnce());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async flushOnce(): Promise<void> {
    const store = this.opts.store;
    const dirty = [...this.pending.values()].filter((b) => b.rev !== b.flushedRev);
    if (dirty.length > 0) {
      const revs = dirty.map((b) => b.rev);
      const ops: AnyBulkWriteOperation<MetricBucketDoc>[] = dirty.map((b) => ({
        updateOne: {
          filter: { service: b.service, version: b.version, gatewayId: this.gatewayId, bucketStart: new Date(b.bucketStart) },
          update: { $set: this.toDoc(b) },
          upsert: true,
        },
      }));
      try {
        await store.metrics.bulkWrite(ops, { ordered: false });
      } catch (err) {
        if (!this.failing) this.opts.log?.warn({ err }, 'metrics flush failed; buckets kept for the next attempt');
        this.failing = true;
        throw err;
      }
      if (this.failing) this.opts.log?.info?.({}, 'metrics flush works again');
      this.failing = false;
      dirty.forEach((b, i) => (b.flushedRev = revs[i]!));
    }
    // A bucket older than the current one gets no more exchanges: once written, it can go.
    const current = Math.floor(this.clock() / this.bucketMs) * this.bucketMs;
    for (const [key, b] of this.pending) {
      if (b.bucketStart < current && b.rev === b.flushedRev) this.pending.delete(key);
    }
  }

  private toDoc(b: PendingBucket): MetricBucketDoc {
    const c = b.counts;
    return {
      service: b.service,
      version: b.version,
      gatewayId: this.gatewayId,
      bucketStart: new Date(b.bucketStart),
      bucketMs: this.bucketMs,
      requests: c.requests,
      failures: c.failures,
      unanswered: c.unanswered,
      httpErrors: c.httpErrors,
      rpcErrors: c.rpcErrors,
      toolErrors: c.toolErrors,
      timeouts: c.timeouts,
      latencyHist: [...c.latencyHist],
      latencySumMs: c.latencySumMs,
    };
  }

  /** Health of every version of a service from MongoDB (all gateways), for GET /api/health/<service>. */
  health(service: string): Promise<ServiceHealth> {
    return readServiceHealth(this.opts.store, service, this.clock());
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

/** Buckets are at most this long; a query reaches back this much further to find overlapping ones. */
const MAX_BUCKET_MS = 60_000;

async function readBuckets(store: Pick<Store, 'metrics'>, service: string, version: string | undefined, sinceMs: number, untilMs: number) {
  const filter = {
    service,
    ...(version === undefined ? {} : { version }),
    bucketStart: { $gt: new Date(sinceMs - MAX_BUCKET_MS), $lte: new Date(untilMs) },
  };
  const docs = await store.metrics.find(filter, { projection: { _id: 0 } }).toArray();
  return docs.filter((d) => d.bucketStart.getTime() + d.bucketMs > sinceMs);
}

function sum(docs: readonly MetricBucketDoc[]): HealthCounts {
  const counts = emptyCounts();
  for (const d of docs) mergeCounts(counts, d);
  return counts;
}

function versionHealth(service: string, version: string, docs: MetricBucketDoc[], sinceMs: number, untilMs: number): VersionHealth {
  return { service, version, since: new Date(sinceMs), until: new Date(untilMs), buckets: docs.length, ...summarize(sum(docs)) };
}

/**
 * Health of one version from the buckets that overlap [sinceMs, untilMs] (epoch ms), summed over
 * all gateways; a bucket that began before sinceMs counts whole. Plain data in, plain data out:
 * made to be called from a Temporal activity.
 */
export async function readHealth(
  store: Pick<Store, 'metrics'>,
  service: string,
  version: string,
  sinceMs: number,
  untilMs: number = Date.now(),
): Promise<VersionHealth> {
  const docs = await readBuckets(store, service, version, sinceMs, untilMs);
  return versionHealth(service, version, docs, sinceMs, untilMs);
}

/** The summed counters behind readHealth, for judging (core/health.ts analyseStep). */
export async function readCounts(store: Pick<Store, 'metrics'>, service: string, version: string, sinceMs: number, untilMs: number = Date.now()): Promise<HealthCounts> {
  return sum(await readBuckets(store, service, version, sinceMs, untilMs));
}

/** Every version of a service over the last minute and the last five minutes before `now`. */
export async function readServiceHealth(store: Pick<Store, 'metrics'>, service: string, now: number = Date.now()): Promise<ServiceHealth> {
  const since5m = now - 5 * 60_000;
  const since60s = now - 60_000;
  const docs = await readBuckets(store, service, undefined, since5m, now);
  const byVersion = new Map<string, MetricBucketDoc[]>();
  for (const d of docs) byVersion.set(d.version, [...(byVersion.get(d.version) ?? []), d]);
  const versions: ServiceHealth['versions'] = {};
  for (const [version, list] of [...byVersion].sort(([a], [b]) => a.localeCompare(b))) {
    const recent = list.filter((d) => d.bucketStart.getTime() + d.bucketMs > since60s);
    versions[version] = {
      last60s: versionHealth(service, version, recent, since60s, now),
      last5m: versionHealth(service, version, list, since5m, now),
    };
  }
  return { service, at: new Date(now), versions };
}
