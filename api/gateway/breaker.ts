/**
 * Circuit breaker per (service, version), a traffic observer of its own. It judges the version's
 * rolling window on every counted exchange that could make it unhealthy, so a breach trips it within
 * that call, not on the next timer tick. The rules and their reasons are in docs/health.md; in short:
 * - only work requests count (and anything the version leaves unanswered), never a client's 4xx;
 * - a canary is judged on the errors it adds to the stable version's rate over the same window;
 * - a breach must hold without the client with the most failures;
 * - the stable version never opens for tool-level errors or slowness: that is an alert (onAlert),
 *   since there is nothing better to send its clients to;
 * - closed → open (breach) → half-open (after cooldown: probes) → closed after
 *   halfOpenSuccesses successful work requests, or open again on a failed one.
 */
import { performance } from 'node:perf_hooks';
import {
  ClientWindow,
  countsForHealth,
  evaluateHealth,
  isFailedExchange,
  isUnanswered,
  LATENCY_BOUNDS_MS,
  latencySlot,
  resolveThresholds,
  RollingWindow,
  type BreakerThresholds,
  type HealthStats,
} from '../../core/health.ts';
import type { ExchangeContext, ExchangeOutcome, TrafficObserver } from './traffic.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface TripEvent {
  service: string;
  version: string;
  reasons: string[];
  stats: HealthStats;
  /** The version leaves requests unanswered: with nowhere else to go, refusing beats waiting. */
  unanswered: boolean;
  at: Date;
}

/** The stable version breaches on tool-level errors or latency: it keeps serving, people are told. */
export interface AlertEvent {
  service: string;
  version: string;
  reasons: string[];
  stats: HealthStats;
  at: Date;
}

export interface BreakerStateChange {
  service: string;
  version: string;
  from: BreakerState;
  to: BreakerState;
  reasons: string[];
  at: Date;
}

export interface BreakerStatus {
  service: string;
  version: string;
  state: BreakerState;
  reasons: string[];
  /** Open because the version leaves requests unanswered (see failFast). */
  failFast: boolean;
  stats?: HealthStats;
  /** When it last opened, as a Date. */
  openedAt?: Date;
  /** The last alert while it stayed closed (stable version), if any. */
  alert?: { reasons: string[]; at: Date };
}

export interface CircuitBreakerOptions {
  /** Overrides of DEFAULT_THRESHOLDS for every service. */
  defaults?: Partial<BreakerThresholds>;
  /** Monotonic ms, the clock of ExchangeContext.startedAt (performance.now). */
  clock?: () => number;
  /** Slot size of the rolling windows. */
  windowBucketMs?: number;
}

interface Entry {
  service: string;
  version: string;
  state: BreakerState;
  window: RollingWindow;
  clients: ClientWindow;
  openedAt: number;
  openedAtDate?: Date;
  unanswered: boolean;
  /** When it turned half-open: exchanges that began earlier are stragglers and prove nothing. */
  halfOpenAt: number;
  /** When each probe still out was let through, oldest first. */
  probes: number[];
  successes: number;
  reasons: string[];
  stats?: HealthStats;
  alert?: { reasons: string[]; at: Date; atMs: number };
  /**
   * The last counted exchange that could make a judgement unhealthy (a failure, or a latency whose
   * histogram slot reaches above maxP99Ms), or the last change of thresholds. With none of them in
   * the window, the judgement is healthy without making it.
   */
  noteworthyAt: number;
}

type Listener<T> = (event: T) => void;

const keyOf = (service: string, version: string) => `${service}\u0000${version}`;

/**
 * Who a client is, for the per-client rule: a name it gives (X-Mcpship-Client) or its credential
 * when it has one, else its session, else its address (api/gateway/client-key.ts). Sessions come
 * before the address because every client of one host shares that.
 */
export function breakerClient(ctx: ExchangeContext): string {
  const key = ctx.clientKey;
  if (key !== undefined && (key.startsWith('client:') || key.startsWith('cred:'))) return key;
  return ctx.sessionId !== undefined ? `session:${ctx.sessionId}` : (key ?? 'unknown');
}

export class CircuitBreaker implements TrafficObserver {
  private readonly entries = new Map<string, Entry>();
  private readonly perService = new Map<string, BreakerThresholds>();
  private readonly stable = new Map<string, string>();
  private readonly defaults: BreakerThresholds;
  private readonly clock: () => number;
  private readonly windowBucketMs: number;
  private readonly tripListeners = new Set<Listener<TripEvent>>();
  private readonly alertListeners = new Set<Listener<AlertEvent>>();
  private readonly changeListeners = new Set<Listener<BreakerStateChange>>();

  constructor(opts: CircuitBreakerOptions = {}) {
    this.defaults = resolveThresholds(opts.defaults);
    this.clock = opts.clock ?? (() => performance.now());
    this.windowBucketMs = opts.windowBucketMs ?? 1_000;
  }

  /** Sets a service's thresholds: `partial` over the defaults, replacing earlier overrides. */
  setThresholds(service: string, partial: Partial<BreakerThresholds>): BreakerThresholds {
    const t = resolveThresholds(partial, this.defaults);
    const before = this.thresholds(service);
    this.perService.set(service, t);
    // What was not noteworthy under the old thresholds may be under these: judge every exchange for a window.
    if ((Object.keys(t) as (keyof BreakerThresholds)[]).some((k) => t[k] !== before[k])) {
      const now = this.clock();
      for (const entry of this.entries.values()) if (entry.service === service) entry.noteworthyAt = now;
    }
    return t;
  }

  thresholds(service: string): BreakerThresholds {
    return this.perService.get(service) ?? this.defaults;
  }

  /** The service's stable version (its routing's `stable`): the baseline canaries are judged against. */
  setStable(service: string, version: string | undefined): void {
    if (version === undefined) this.stable.delete(service);
    else this.stable.set(service, version);
  }

  // Errors arrive already summed in the exchange's outcome; nothing to do per message.
  message(): void {}

  exchangeEnd(ctx: ExchangeContext, outcome: ExchangeOutcome): void {
    const entry = this.entry(ctx.service, ctx.version);
    const counted = countsForHealth(ctx.methods, outcome);
    const failed = isFailedExchange(outcome);
    const now = this.clock();
    if (counted) {
      entry.window.record(now, outcome);
      entry.clients.record(now, breakerClient(ctx), failed);
      if (failed || this.mightBeSlow(ctx.service, outcome.latencyMs)) entry.noteworthyAt = now;
    }
    const state = this.advance(entry);
    if (state === 'closed') {
      if (counted && this.mayBeUnhealthy(entry, now)) this.judge(entry, now);
      return;
    }
    // Open: stragglers that were in flight when it tripped prove nothing. Half-open: only
    // exchanges that began after it turned half-open decide.
    if (state === 'open' || ctx.startedAt < entry.halfOpenAt) return;
    entry.probes.shift();
    // An initialize or a list proves nothing either way; the next request may probe.
    if (!counted) return;
    if (failed) {
      const why = outcome.timedOut ? 'timed out' : isUnanswered(outcome) ? `HTTP ${outcome.httpStatus}` : 'error in the response';
      this.open(entry, [`half-open probe failed (${why})`], entry.stats, entry.unanswered || isUnanswered(outcome), false);
      return;
    }
    entry.successes += 1;
    if (entry.successes < this.thresholds(ctx.service).halfOpenSuccesses) return;
    // The failures that tripped it are still in the window; judged again, they would re-trip it.
    entry.window.reset();
    entry.clients.reset();
    this.change(entry, 'closed', [`${entry.successes} work requests succeeded while half-open`]);
  }

  state(service: string, version: string): BreakerState {
    const entry = this.entries.get(keyOf(service, version));
    return entry ? this.advance(entry) : 'closed';
  }

  /** True while the version must not get new sessions: open, or half-open and not yet proven. */
  isOpen(service: string, version: string): boolean {
    return this.state(service, version) !== 'closed';
  }

  /**
   * Whether refusing requests beats passing them on when the version is the last one routable:
   * only when it leaves them unanswered. Tool-level errors are the version's answer, and the
   * client is better served by it than by a 503 from the gateway.
   */
  failFast(service: string, version: string): boolean {
    const entry = this.entries.get(keyOf(service, version));
    return entry !== undefined && this.advance(entry) !== 'closed' && entry.unanswered;
  }

  /**
   * May a request go to this version now? Closed: yes. Open: no. Half-open: as many probes at a
   * time as successes close it (a client's GET stream or initialize may be one of them); a probe
   * whose exchange never ends frees its place after a further cooldown.
   */
  allowRequest(service: string, version: string): boolean {
    const entry = this.entries.get(keyOf(service, version));
    if (!entry) return true;
    const state = this.advance(entry);
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const now = this.clock();
    const t = this.thresholds(service);
    while (entry.probes.length > 0 && now - entry.probes[0]! >= t.cooldownMs) entry.probes.shift();
    if (entry.probes.length >= t.halfOpenSuccesses) return false;
    entry.probes.push(now);
    return true;
  }

  /** Called on every closed → open transition (not when a probe fails: that is the same outage). */
  onTrip(listener: Listener<TripEvent>): () => void {
    this.tripListeners.add(listener);
    return () => this.tripListeners.delete(listener);
  }

  /** Called when the stable version breaches without opening; again at most once per cooldown. */
  onAlert(listener: Listener<AlertEvent>): () => void {
    this.alertListeners.add(listener);
    return () => this.alertListeners.delete(listener);
  }

  onStateChange(listener: Listener<BreakerStateChange>): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Closes the breaker by hand (a version deployed afresh) and forgets its window. */
  reset(service: string, version: string): void {
    const entry = this.entries.get(keyOf(service, version));
    if (!entry) return;
    entry.window.reset();
    entry.clients.reset();
    if (entry.state === 'closed') return;
    entry.probes = [];
    this.change(entry, 'closed', ['reset']);
  }

  /** Every version this breaker has seen traffic of, or those of one service. */
  list(service?: string): BreakerStatus[] {
    return [...this.entries.values()]
      .filter((e) => service === undefined || e.service === service)
      .map((e) => {
        const state = this.advance(e);
        return {
          service: e.service,
          version: e.version,
          state,
          reasons: e.reasons,
          failFast: state !== 'closed' && e.unanswered,
          ...(e.stats ? { stats: e.stats } : {}),
          ...(e.openedAtDate ? { openedAt: e.openedAtDate } : {}),
          ...(e.alert ? { alert: { reasons: e.alert.reasons, at: e.alert.at } } : {}),
        };
      });
  }

  /** Could this latency put the p99 above maxP99Ms? percentile() reads within its histogram slot, up to the slot's upper bound. */
  private mightBeSlow(service: string, latencyMs: number): boolean {
    const slot = latencySlot(Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0);
    return LATENCY_BOUNDS_MS[Math.min(slot, LATENCY_BOUNDS_MS.length - 1)]! > this.thresholds(service).maxP99Ms;
  }

  /**
   * Whether judging could find the version unhealthy. An error rate above the limit (above the
   * stable version's, for a canary) needs a failure in the window, and a p99 above maxP99Ms a slow
   * exchange; a snapshot spans at most windowMs plus one bucket. Judging a healthy window is a
   * snapshot of every bucket per exchange, which showed in the gateway's profile.
   */
  private mayBeUnhealthy(entry: Entry, now: number): boolean {
    return now - entry.noteworthyAt <= this.thresholds(entry.service).windowMs + this.windowBucketMs;
  }

  private judge(entry: Entry, now: number): void {
    const t = this.thresholds(entry.service);
    const stable = this.stable.get(entry.service);
    const isStable = stable === entry.version;
    const baselineEntry = stable !== undefined && !isStable ? this.entries.get(keyOf(entry.service, stable)) : undefined;
    const verdict = evaluateHealth(
      {
        counts: entry.window.snapshot(now, t.windowMs),
        clients: entry.clients.snapshot(now, t.windowMs),
        ...(baselineEntry ? { baseline: baselineEntry.window.snapshot(now, t.windowMs) } : {}),
      },
      t,
    );
    if (verdict.healthy) return;
    if (!isStable || verdict.unanswered) {
      this.open(entry, verdict.reasons, verdict.stats, verdict.unanswered, true);
      return;
    }
    if (entry.alert && now - entry.alert.atMs < t.cooldownMs) return;
    const at = new Date();
    entry.alert = { reasons: verdict.reasons, at, atMs: now };
    this.emit(this.alertListeners, { service: entry.service, version: entry.version, reasons: verdict.reasons, stats: verdict.stats, at });
  }

  private entry(service: string, version: string): Entry {
    const key = keyOf(service, version);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = {
        service,
        version,
        state: 'closed',
        window: new RollingWindow(this.windowBucketMs),
        clients: new ClientWindow(this.windowBucketMs),
        openedAt: 0,
        unanswered: false,
        halfOpenAt: 0,
        probes: [],
        successes: 0,
        reasons: [],
        noteworthyAt: Number.NEGATIVE_INFINITY,
      };
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Open turns half-open when asked after the cooldown: no timer needed for a passive change. */
  private advance(entry: Entry): BreakerState {
    if (entry.state === 'open' && this.clock() - entry.openedAt >= this.thresholds(entry.service).cooldownMs) {
      entry.probes = [];
      entry.successes = 0;
      entry.halfOpenAt = this.clock();
      this.change(entry, 'half-open', entry.reasons);
    }
    return entry.state;
  }

  private open(entry: Entry, reasons: string[], stats: HealthStats | undefined, unanswered: boolean, trip: boolean): void {
    entry.openedAt = this.clock();
    entry.openedAtDate = new Date();
    entry.probes = [];
    entry.reasons = reasons;
    entry.unanswered = unanswered;
    if (stats) entry.stats = stats;
    this.change(entry, 'open', reasons);
    if (trip && stats) {
      this.emit(this.tripListeners, { service: entry.service, version: entry.version, reasons, stats, unanswered, at: entry.openedAtDate });
    }
  }

  private change(entry: Entry, to: BreakerState, reasons: string[]): void {
    const from = entry.state;
    entry.state = to;
    if (to === 'closed') {
      entry.reasons = [];
      entry.unanswered = false;
    }
    this.emit(this.changeListeners, { service: entry.service, version: entry.version, from, to, reasons, at: new Date() });
  }

  private emit<T>(listeners: Set<Listener<T>>, event: T): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure must not leave the breaker half-changed or fail the exchange.
      }
    }
  }
}
