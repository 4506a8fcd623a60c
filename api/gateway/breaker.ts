/**
 * Circuit breaker per (service, version). It judges the version's rolling window on every
 * recorded exchange, so a breach trips it within that call, not on the next timer tick.
 * closed → open (breach) → half-open (after cooldown: one probe) → closed (probe ok) or open again.
 */
import { performance } from 'node:perf_hooks';
import { evaluateHealth, isFailedExchange, resolveThresholds, type BreakerThresholds, type HealthStats, type RollingWindow } from '../../core/health.ts';
import type { ExchangeRecorded } from './metrics.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface TripEvent {
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
  stats?: HealthStats;
  /** When it last opened, as a Date. */
  openedAt?: Date;
}

export interface CircuitBreakerOptions {
  /** Overrides of DEFAULT_THRESHOLDS for every service. */
  defaults?: Partial<BreakerThresholds>;
  /** Monotonic ms, the clock of ExchangeContext.startedAt (performance.now). */
  clock?: () => number;
}

interface Entry {
  service: string;
  version: string;
  state: BreakerState;
  openedAt: number;
  openedAtDate?: Date;
  /** When the half-open probe was let through; undefined while none is out. */
  probeAt?: number;
  reasons: string[];
  stats?: HealthStats;
}

type Listener<T> = (event: T) => void;

const keyOf = (service: string, version: string) => `${service}\u0000${version}`;

export class CircuitBreaker {
  private readonly entries = new Map<string, Entry>();
  private readonly perService = new Map<string, BreakerThresholds>();
  private readonly defaults: BreakerThresholds;
  private readonly clock: () => number;
  private readonly tripListeners = new Set<Listener<TripEvent>>();
  private readonly changeListeners = new Set<Listener<BreakerStateChange>>();

  constructor(opts: CircuitBreakerOptions = {}) {
    this.defaults = resolveThresholds(opts.defaults);
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Sets a service's thresholds: `partial` over the defaults, replacing earlier overrides. */
  setThresholds(service: string, partial: Partial<BreakerThresholds>): BreakerThresholds {
    const t = resolveThresholds(partial, this.defaults);
    this.perService.set(service, t);
    return t;
  }

  thresholds(service: string): BreakerThresholds {
    return this.perService.get(service) ?? this.defaults;
  }

  /** Feed: subscribe with `recorder.onExchange((e) => breaker.observe(e))`. */
  observe(e: ExchangeRecorded): void {
    const entry = this.entry(e.service, e.version);
    const state = this.advance(entry);
    if (state === 'closed') {
      const verdict = evaluateHealth(e.window, this.thresholds(e.service), e.now);
      if (!verdict.healthy) this.open(entry, verdict.reasons, verdict.stats, true);
      return;
    }
    // Open: stragglers that were in flight when it tripped prove nothing. Half-open: only the
    // probe's own exchange decides, not one that started before it was let through.
    if (state === 'open' || entry.probeAt === undefined || e.ctx.startedAt < entry.probeAt) return;
    if (isFailedExchange(e.outcome)) {
      const why = e.outcome.timedOut ? 'timed out' : e.outcome.httpStatus === 0 || e.outcome.httpStatus >= 500 ? `HTTP ${e.outcome.httpStatus}` : 'error in the response';
      this.open(entry, [`half-open probe failed (${why})`], entry.stats, false);
    } else {
      // The failures that tripped it are still in the window; judged again, they would re-trip it.
      e.window.reset();
      this.change(entry, 'closed', ['half-open probe succeeded']);
      entry.probeAt = undefined;
    }
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
   * May a request go to this version now? Closed: yes. Open: no. Half-open: yes for exactly one
   * probe; if the probe's exchange never ends, another is allowed after a further cooldown.
   */
  allowRequest(service: string, version: string): boolean {
    const entry = this.entries.get(keyOf(service, version));
    if (!entry) return true;
    const state = this.advance(entry);
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const now = this.clock();
    if (entry.probeAt !== undefined && now - entry.probeAt < this.thresholds(service).cooldownMs) return false;
    entry.probeAt = now;
    return true;
  }

  /** Called on every closed → open transition (not when a probe fails: that is the same outage). */
  onTrip(listener: Listener<TripEvent>): () => void {
    this.tripListeners.add(listener);
    return () => this.tripListeners.delete(listener);
  }

  onStateChange(listener: Listener<BreakerStateChange>): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * Closes the breaker by hand (a version deployed afresh). Pass the version's window
   * (recorder.window(service, version)) so that its old failures do not trip it again at once.
   */
  reset(service: string, version: string, window?: RollingWindow): void {
    window?.reset();
    const entry = this.entries.get(keyOf(service, version));
    if (!entry || entry.state === 'closed') return;
    entry.probeAt = undefined;
    this.change(entry, 'closed', ['reset']);
  }

  /** Every breaker that has ever left closed, or of one service. */
  list(service?: string): BreakerStatus[] {
    return [...this.entries.values()]
      .filter((e) => service === undefined || e.service === service)
      .map((e) => ({
        service: e.service,
        version: e.version,
        state: this.advance(e),
        reasons: e.reasons,
        ...(e.stats ? { stats: e.stats } : {}),
        ...(e.openedAtDate ? { openedAt: e.openedAtDate } : {}),
      }));
  }

  private entry(service: string, version: string): Entry {
    const key = keyOf(service, version);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { service, version, state: 'closed', openedAt: 0, reasons: [] };
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Open turns half-open when asked after the cooldown: no timer needed for a passive change. */
  private advance(entry: Entry): BreakerState {
    if (entry.state === 'open' && this.clock() - entry.openedAt >= this.thresholds(entry.service).cooldownMs) {
      entry.probeAt = undefined;
      this.change(entry, 'half-open', entry.reasons);
    }
    return entry.state;
  }

  private open(entry: Entry, reasons: string[], stats: HealthStats | undefined, trip: boolean): void {
    entry.openedAt = this.clock();
    entry.openedAtDate = new Date();
    entry.probeAt = undefined;
    entry.reasons = reasons;
    if (stats) entry.stats = stats;
    this.change(entry, 'open', reasons);
    if (trip && stats) {
      this.emit(this.tripListeners, { service: entry.service, version: entry.version, reasons, stats, at: entry.openedAtDate });
    }
  }

  private change(entry: Entry, to: BreakerState, reasons: string[]): void {
    const from = entry.state;
    entry.state = to;
    if (to === 'closed') entry.reasons = [];
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
