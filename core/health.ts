/**
 * Health arithmetic shared by the gateway (live breaker), the metrics store and workflow analysis:
 * pure functions over counters, so every reader computes rates and percentiles the same way.
 */

/**
 * Upper bounds (inclusive) of the latency slots. Fixed, so that histograms from any gateway and
 * any time bucket merge by adding slot by slot; the last slot of a histogram counts everything
 * above the last bound. Denser where breaker thresholds usually sit (100 ms – 5 s).
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([
  1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 15_000,
  20_000, 30_000, 60_000,
]);
export const HISTOGRAM_SLOTS = LATENCY_BOUNDS_MS.length + 1;

/** Longest span a rolling window keeps, and so the longest breaker window. */
export const MAX_WINDOW_MS = 60_000;

export function emptyHistogram(): number[] {
  return new Array<number>(HISTOGRAM_SLOTS).fill(0);
}

export function latencySlot(latencyMs: number): number {
  // Binary search: this runs once per proxied exchange.
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (latencyMs <= LATENCY_BOUNDS_MS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export function addToHistogram(hist: number[], latencyMs: number, count = 1): void {
  const slot = latencySlot(Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0);
  hist[slot] = (hist[slot] ?? 0) + count;
}

/** Adds `from` into `into` (which it returns); a shorter stored histogram is padded with zeros. */
export function mergeHistograms(into: number[], from: readonly number[]): number[] {
  for (let i = 0; i < HISTOGRAM_SLOTS; i++) into[i] = (into[i] ?? 0) + (from[i] ?? 0);
  return into;
}

/**
 * The q-quantile (0 < q ≤ 1) estimated from a histogram, interpolating linearly inside the slot
 * that holds it; null without samples. Samples above the last bound are reported as that bound:
 * the histogram cannot see further, and a breaker threshold beyond 60 s makes no sense anyway.
 */
export function percentile(hist: readonly number[], q: number): number | null {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    const count = hist[i] ?? 0;
    if (count === 0) continue;
    if (seen + count >= rank) {
      if (i >= LATENCY_BOUNDS_MS.length) return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const upper = LATENCY_BOUNDS_MS[i]!;
      return lower + ((rank - seen) / count) * (upper - lower);
    }
    seen += count;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

/** What one proxied exchange (one HTTP request to a version) came to. */
export interface ExchangeResult {
  /** 0 when no response came at all (connection refused or reset). */
  httpStatus: number;
  latencyMs: number;
  timedOut: boolean;
  rpcErrors: number;
  toolErrors: number;
}

/**
 * 5xx and "no response" are the version's fault. 4xx are the client's (unknown session, bad
 * input) and must not trip a version's breaker.
 */
export function isHttpFailure(httpStatus: number): boolean {
  return httpStatus === 0 || httpStatus >= 500;
}

/** The version gave no proper answer at all: nothing, a 5xx, or nothing in time. */
export function isUnanswered(r: ExchangeResult): boolean {
  return r.timedOut || isHttpFailure(r.httpStatus);
}

/** An exchange fails if any part of it did; one exchange counts once in the error rate. */
export function isFailedExchange(r: ExchangeResult): boolean {
  return isUnanswered(r) || r.rpcErrors > 0 || r.toolErrors > 0;
}

/**
 * The MCP methods that make a server do work for a client. Their outcomes are what a version is
 * judged by: an `initialize`, a list or a notification succeeds on almost any build, so counting
 * them as successes would hide a version whose every tool call fails (docs/health.md).
 */
export const WORK_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get', 'completion/complete']);

/**
 * Whether an exchange counts toward its version's health, given the JSON-RPC methods the client's
 * requests in it carried. A 4xx is the client's doing and never counts. Work requests count either
 * way; anything else counts only when the version left it unanswered (no response, 5xx, timeout),
 * which is the version's fault whatever was asked.
 */
export function countsForHealth(methods: readonly string[] | undefined, r: ExchangeResult): boolean {
  if (!r.timedOut && r.httpStatus >= 400 && r.httpStatus < 500) return false;
  return isUnanswered(r) || (methods ?? []).some((m) => WORK_METHODS.has(m));
}

/** Additive counters of a set of exchanges: the shape of MetricBucketDoc's numbers. */
export interface HealthCounts {
  requests: number;
  /** Exchanges with at least one failure of any kind. */
  failures: number;
  /** Exchanges the version left unanswered (isUnanswered): no response, a 5xx or a timeout. */
  unanswered: number;
  httpErrors: number;
  rpcErrors: number;
  toolErrors: number;
  timeouts: number;
  latencyHist: number[];
  latencySumMs: number;
}

export function emptyCounts(): HealthCounts {
  return { requests: 0, failures: 0, unanswered: 0, httpErrors: 0, rpcErrors: 0, toolErrors: 0, timeouts: 0, latencyHist: emptyHistogram(), latencySumMs: 0 };
}

export function addExchange(counts: HealthCounts, r: ExchangeResult): HealthCounts {
  counts.requests += 1;
  if (isFailedExchange(r)) counts.failures += 1;
  if (isUnanswered(r)) counts.unanswered += 1;
  if (isHttpFailure(r.httpStatus)) counts.httpErrors += 1;
  counts.rpcErrors += Math.max(0, r.rpcErrors);
  counts.toolErrors += Math.max(0, r.toolErrors);
  if (r.timedOut) counts.timeouts += 1;
  const latency = Number.isFinite(r.latencyMs) && r.latencyMs > 0 ? r.latencyMs : 0;
  addToHistogram(counts.latencyHist, latency);
  counts.latencySumMs += latency;
  return counts;
}

/**
 * Adds `from` into `into`. `failures` and `unanswered` may be missing from documents written
 * before they existed; then the per-kind counts bound them from above, the safe side for a health check.
 */
export function mergeCounts(into: HealthCounts, from: Partial<HealthCounts>): HealthCounts {
  const requests = from.requests ?? 0;
  const httpErrors = from.httpErrors ?? 0;
  const rpcErrors = from.rpcErrors ?? 0;
  const toolErrors = from.toolErrors ?? 0;
  const timeouts = from.timeouts ?? 0;
  into.requests += requests;
  into.failures += from.failures ?? Math.min(requests, httpErrors + rpcErrors + toolErrors + timeouts);
  into.unanswered += from.unanswered ?? Math.min(requests, httpErrors + timeouts);
  into.httpErrors += httpErrors;
  into.rpcErrors += rpcErrors;
  into.toolErrors += toolErrors;
  into.timeouts += timeouts;
  mergeHistograms(into.latencyHist, from.latencyHist ?? []);
  into.latencySumMs += from.latencySumMs ?? 0;
  return into;
}

/** Share of exchanges without any failure; null without traffic (no data is not "healthy"). */
export function successRate(counts: HealthCounts): number | null {
  return counts.requests === 0 ? null : (counts.requests - counts.failures) / counts.requests;
}

export function errorRate(counts: HealthCounts): number | null {
  return counts.requests === 0 ? null : counts.failures / counts.requests;
}

/** Rates and percentiles of a set of exchanges, as the API and the workflows report them. */
export interface HealthStats {
  requests: number;
  failures: number;
  unanswered: number;
  httpErrors: number;
  rpcErrors: number;
  toolErrors: number;
  timeouts: number;
  successRate: number | null;
  errorRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
}

export function summarize(counts: HealthCounts): HealthStats {
  return {
    requests: counts.requests,
    failures: counts.failures,
    unanswered: counts.unanswered,
    httpErrors: counts.httpErrors,
    rpcErrors: counts.rpcErrors,
    toolErrors: counts.toolErrors,
    timeouts: counts.timeouts,
    successRate: successRate(counts),
    errorRate: errorRate(counts),
    p50Ms: percentile(counts.latencyHist, 0.5),
    p95Ms: percentile(counts.latencyHist, 0.95),
    p99Ms: percentile(counts.latencyHist, 0.99),
    meanMs: counts.requests === 0 ? null : counts.latencySumMs / counts.requests,
  };
}

/**
 * Counters over the last few seconds in fixed slots (a ring), so that recording is O(1) and old
 * traffic falls out without a timer. Time is whatever clock the caller passes, in ms.
 */
export class RollingWindow {
  private readonly slots: { index: number; counts: HealthCounts }[];

  constructor(
    readonly bucketMs = 1_000,
    readonly capacityMs = MAX_WINDOW_MS,
  ) {
    if (!(bucketMs > 0) || !(capacityMs >= bucketMs)) throw new RangeError('RollingWindow needs 0 < bucketMs <= capacityMs');
    const size = Math.ceil(capacityMs / bucketMs) + 1;
    this.slots = Array.from({ length: size }, () => ({ index: -1, counts: emptyCounts() }));
  }

  record(now: number, r: ExchangeResult): void {
    const index = Math.floor(now / this.bucketMs);
    const slot = this.slots[index % this.slots.length]!;
    if (slot.index !== index) {
      slot.index = index;
      slot.counts = emptyCounts();
    }
    addExchange(slot.counts, r);
  }

  /**
   * Counters of the buckets that overlap (now - spanMs, now]: up to one bucket more than the span,
   * never less. The span is capped at the window's capacity.
   */
  snapshot(now: number, spanMs = this.capacityMs): HealthCounts {
    const newest = Math.floor(now / this.bucketMs);
    const oldest = Math.floor((now - Math.min(spanMs, this.capacityMs)) / this.bucketMs);
    const total = emptyCounts();
    for (const slot of this.slots) {
      if (slot.index >= oldest && slot.index <= newest) mergeCounts(total, slot.counts);
    }
    return total;
  }

  /** Forgets everything: a breaker that closes again must not be re-tripped by the old failures. */
  reset(): void {
    for (const slot of this.slots) {
      slot.index = -1;
      slot.counts = emptyCounts();
    }
  }
}

/** One client's share of a version's counted exchanges. */
export interface ClientTally {
  requests: number;
  failures: number;
}

/** Clients beyond this many in one slot are tallied together: memory stays bounded under a flood of keys. */
export const MAX_CLIENTS_PER_SLOT = 10_000;
const OTHER_CLIENTS = '\u0000others';

/**
 * Requests and failures per client over the last few seconds, in fixed slots like RollingWindow:
 * what tells "one client's errors" from "the version's errors".
 */
export class ClientWindow {
  private readonly slots: { index: number; tallies: Map<string, ClientTally> }[];

  constructor(
    readonly bucketMs = 1_000,
    readonly capacityMs = MAX_WINDOW_MS,
  ) {
    if (!(bucketMs > 0) || !(capacityMs >= bucketMs)) throw new RangeError('ClientWindow needs 0 < bucketMs <= capacityMs');
    this.slots = Array.from({ length: Math.ceil(capacityMs / bucketMs) + 1 }, () => ({ index: -1, tallies: new Map() }));
  }

  record(now: number, client: string, failed: boolean): void {
    const index = Math.floor(now / this.bucketMs);
    const slot = this.slots[index % this.slots.length]!;
    if (slot.index !== index) {
      slot.index = index;
      slot.tallies = new Map();
    }
    const key = slot.tallies.has(client) || slot.tallies.size < MAX_CLIENTS_PER_SLOT ? client : OTHER_CLIENTS;
    const tally = slot.tallies.get(key) ?? { requests: 0, failures: 0 };
    tally.requests += 1;
    if (failed) tally.failures += 1;
    slot.tallies.set(key, tally);
  }

  /** Per client, the slots that overlap (now - spanMs, now], as RollingWindow.snapshot counts them. */
  snapshot(now: number, spanMs = this.capacityMs): ClientTally[] {
    const newest = Math.floor(now / this.bucketMs);
    const oldest = Math.floor((now - Math.min(spanMs, this.capacityMs)) / this.bucketMs);
    const merged = new Map<string, ClientTally>();
    for (const slot of this.slots) {
      if (slot.index < oldest || slot.index > newest) continue;
      for (const [client, t] of slot.tallies) {
        const into = merged.get(client) ?? { requests: 0, failures: 0 };
        into.requests += t.requests;
        into.failures += t.failures;
        merged.set(client, into);
      }
    }
    return [...merged.values()];
  }

  reset(): void {
    for (const slot of this.slots) {
      slot.index = -1;
      slot.tallies = new Map();
    }
  }
}

/** When a version counts as unhealthy; configurable per service. */
export interface BreakerThresholds {
  /** Highest tolerated share of failed exchanges (0..1), above the stable version's own share for a canary. */
  maxErrorRate: number;
  maxP99Ms: number;
  /** Fewer counted exchanges than this in the window prove nothing either way. */
  minRequests: number;
  /** The span the rates are computed over, at most MAX_WINDOW_MS. */
  windowMs: number;
  /** How long a tripped breaker stays open before it lets a probe through. */
  cooldownMs: number;
  /** Successful work requests in a row that close a half-open breaker. */
  halfOpenSuccesses: number;
}

export const DEFAULT_THRESHOLDS: Readonly<BreakerThresholds> = Object.freeze({
  maxErrorRate: 0.2,
  maxP99Ms: 2_000,
  minRequests: 10,
  windowMs: 10_000,
  cooldownMs: 5_000,
  halfOpenSuccesses: 3,
});

/** Defaults overlaid with `partial`; throws RangeError on a value that cannot be meant. */
export function resolveThresholds(partial: Partial<BreakerThresholds> = {}, base: BreakerThresholds = DEFAULT_THRESHOLDS): BreakerThresholds {
  const t: BreakerThresholds = { ...base };
  for (const [key, value] of Object.entries(partial) as [keyof BreakerThresholds, number | undefined][]) {
    if (value !== undefined) t[key] = value;
  }
  const bad = (what: string) => new RangeError(`breaker threshold ${what}`);
  if (!(t.maxErrorRate >= 0 && t.maxErrorRate <= 1)) throw bad(`maxErrorRate must be within 0..1, got ${t.maxErrorRate}`);
  if (!(t.maxP99Ms > 0)) throw bad(`maxP99Ms must be > 0, got ${t.maxP99Ms}`);
  if (!(Number.isInteger(t.minRequests) && t.minRequests >= 1)) throw bad(`minRequests must be an integer >= 1, got ${t.minRequests}`);
  if (!(t.windowMs > 0 && t.windowMs <= MAX_WINDOW_MS)) throw bad(`windowMs must be within 1..${MAX_WINDOW_MS}, got ${t.windowMs}`);
  if (!(t.cooldownMs >= 0)) throw bad(`cooldownMs must be >= 0, got ${t.cooldownMs}`);
  if (!(Number.isInteger(t.halfOpenSuccesses) && t.halfOpenSuccesses >= 1)) throw bad(`halfOpenSuccesses must be an integer >= 1, got ${t.halfOpenSuccesses}`);
  return t;
}

/** What a version is judged on, all over the same window. */
export interface HealthEvidence {
  /** The version's counted exchanges (countsForHealth). */
  counts: HealthCounts;
  /** The same exchanges per client; when given, a breach must not hinge on one client. */
  clients?: readonly ClientTally[];
  /** The stable version's counted exchanges, when the version judged is a canary beside it. */
  baseline?: HealthCounts;
}

export interface HealthVerdict {
  healthy: boolean;
  /** Enough counted exchanges to judge at all (thresholds.minRequests). */
  judged: boolean;
  /**
   * The breach is the version leaving requests unanswered (no response, 5xx, timeouts), not
   * tool-level errors or slowness: only then is refusing requests better than passing them on.
   */
  unanswered: boolean;
  /** Why it is unhealthy, one line per breached threshold; empty when healthy. */
  reasons: string[];
  stats: HealthStats;
}

const rateOf = (failures: number, requests: number) => (requests === 0 ? 0 : failures / requests);

/**
 * Judges a version (docs/health.md). Too few counted exchanges is healthy: a breaker must not trip
 * on two unlucky requests (the deployment analysis calls that inconclusive, never healthy).
 * - Error rate: a canary is judged on the errors it adds to the stable version's rate over the
 *   same window (a tool that fails everywhere is not the canary's fault); without a baseline of
 *   minRequests, on its own rate.
 * - With per-client tallies, the breach must hold without the client with the most failures too,
 *   so that one client sending bad arguments cannot trip a version.
 * - p99 latency: breached unless the stable version is as slow over the same window.
 */
export function evaluateHealth(evidence: HealthCounts | HealthEvidence, thresholds: Partial<BreakerThresholds> = {}): HealthVerdict {
  const t = resolveThresholds(thresholds);
  const { counts, clients, baseline } = 'counts' in evidence ? evidence : { counts: evidence, clients: undefined, baseline: undefined };
  const stats = summarize(counts);
  const reasons: string[] = [];
  const judged = counts.requests >= t.minRequests;
  const base = baseline && baseline.requests >= t.minRequests ? baseline : undefined;
  const baseRate = base ? rateOf(base.failures, base.requests) : 0;
  let unanswered = false;
  if (judged) {
    const errorRate = rateOf(counts.failures, counts.requests);
    let errorBreach = errorRate - baseRate > t.maxErrorRate;
    if (errorBreach && clients) {
      const worst = clients.reduce<ClientTally>((w, c) => (c.failures > w.failures ? c : w), { requests: 0, failures: 0 });
      const rest = counts.requests - worst.requests;
      // Half the evidence is enough without that client: it takes two clients to trip, not 2 × minRequests.
      errorBreach = rest >= Math.ceil(t.minRequests / 2) && rateOf(counts.failures - worst.failures, rest) - baseRate > t.maxErrorRate;
    }
    if (errorBreach) {
      const over = base ? `${pct(t.maxErrorRate)} above the stable version's ${pct(baseRate)}` : pct(t.maxErrorRate);
      reasons.push(`error rate ${pct(errorRate)} > ${over} (${counts.failures}/${counts.requests} failed)`);
      unanswered = rateOf(counts.unanswered, counts.requests) - (base ? rateOf(base.unanswered, base.requests) : 0) > t.maxErrorRate;
    }
    const baseP99 = base ? percentile(base.latencyHist, 0.99) : null;
    if (stats.p99Ms !== null && stats.p99Ms > t.maxP99Ms && !(baseP99 !== null && baseP99 > t.maxP99Ms)) {
      reasons.push(`p99 latency ${Math.round(stats.p99Ms)} ms > ${t.maxP99Ms} ms`);
    }
  }
  return { healthy: reasons.length === 0, judged, unanswered, reasons, stats };
}

/** How a canary step's analysis is configured (the manifest's rollout.analysis). */
export interface AnalysisThresholds {
  minRequests: number;
  minSuccessRate: number;
  maxP99Ms: number;
}

/**
 * A deployment step's analysis over MongoDB's counters: the breaker's rules with the step's own
 * thresholds. Fewer counted exchanges than minRequests (at least one) is inconclusive, and an
 * inconclusive analysis is never healthy: no work requests is no evidence.
 */
export function analyseStep(canary: HealthCounts, baseline: HealthCounts | undefined, a: AnalysisThresholds): { healthy: boolean; inconclusive: boolean; reasons: string[]; stats: HealthStats } {
  const minRequests = Math.max(1, a.minRequests);
  const verdict = evaluateHealth(baseline ? { counts: canary, baseline } : canary, { maxErrorRate: 1 - a.minSuccessRate, maxP99Ms: a.maxP99Ms, minRequests });
  if (!verdict.judged) {
    return { healthy: false, inconclusive: true, reasons: [`${canary.requests} work requests, fewer than the ${minRequests} needed to judge`], stats: verdict.stats };
  }
  return { healthy: verdict.healthy, inconclusive: false, reasons: verdict.reasons, stats: verdict.stats };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * JSON-RPC errors and failed tool results in a message from a server (one message or a batch):
 * a top-level `error` is an RPC error; `result.isError === true` is a tool that failed.
 */
export function countMessageErrors(msg: unknown): { rpcErrors: number; toolErrors: number } {
  const out = { rpcErrors: 0, toolErrors: 0 };
  for (const m of Array.isArray(msg) ? msg : [msg]) {
    if (m === null || typeof m !== 'object') continue;
    const rec = m as Record<string, unknown>;
    if (rec.error !== undefined && rec.error !== null) out.rpcErrors += 1;
    else if (rec.result !== null && typeof rec.result === 'object' && (rec.result as Record<string, unknown>).isError === true) out.toolErrors += 1;
  }
  return out;
}
