/**
 * Prometheus metrics of the gateway's own traffic (prom-client), fed by the traffic observer
 * contract like the health buckets are. Label values are bounded: service and version (what is
 * deployed), a method from MCP_METHODS or "other", an outcome from a fixed list; client and
 * session ids are only counted, never labels.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BOUNDS_MS } from '../../core/health.ts';
import { breakerClient, type CircuitBreaker } from './breaker.ts';
import type { CaptureWriter } from './capture.ts';
import type { ExchangeContext, ExchangeOutcome, TrafficObserver } from './traffic.ts';

/** The MCP request methods (2025-11-25 and 2026-07-28) that get a label of their own. */
export const MCP_METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'server/discover',
] as const;
const KNOWN = new Set<string>(MCP_METHODS);

/** An exchange that carried no request (a GET stream, notifications, responses to the server, DELETE). */
export const NO_METHOD = 'none';

export const OUTCOMES = ['ok', 'tool_error', 'rpc_error', 'http_4xx', 'http_5xx', 'timeout', 'no_response'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const methodLabel = (method: string) => (KNOWN.has(method) ? method : 'other');

export function outcomeOf(o: ExchangeOutcome): Outcome {
  if (o.timedOut) return 'timeout';
  if (o.httpStatus === 0) return 'no_response';
  if (o.httpStatus >= 500) return 'http_5xx';
  if (o.httpStatus >= 400) return 'http_4xx';
  if (o.rpcErrors > 0) return 'rpc_error';
  if (o.toolErrors > 0) return 'tool_error';
  return 'ok';
}

/** A client counts as present on a version for this long after its last exchange. */
const CLIENT_WINDOW_MS = 5 * 60_000;
/** Bound on the clients remembered per gateway; the least recent go first. */
const MAX_TRACKED_CLIENTS = 100_000;
const LATENCY_BUCKETS_S = LATENCY_BOUNDS_MS.map((ms) => ms / 1000);

export interface PromObserverDeps {
  registry: Registry;
  breaker: CircuitBreaker;
  capture?: CaptureWriter;
  clock?: () => number;
}

export class PromObserver implements TrafficObserver {
  private readonly requests: Counter<'service' | 'version' | 'method' | 'outcome'>;
  private readonly latency: Histogram<'service' | 'version' | 'method'>;
  /** Client (breakerClient identity) -> service, version and when last seen; Map order is recency. */
  private readonly clients = new Map<string, { service: string; version: string; at: number }>();
  private readonly clock: () => number;

  constructor(deps: PromObserverDeps) {
    const registers = [deps.registry];
    this.clock = deps.clock ?? Date.now;
    this.requests = new Counter({
      name: 'mcpship_gateway_requests_total',
      help: 'MCP requests proxied to an instance, by service, version, JSON-RPC method and outcome (exchanges without a request count as method "none")',
      labelNames: ['service', 'version', 'method', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'mcpship_gateway_request_duration_seconds',
      help: 'Time from the gateway receiving a request to its response being complete, by service, version and method',
      labelNames: ['service', 'version', 'method'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    const clients = this.clients;
    const clock = this.clock;
    new Gauge({
      name: 'mcpship_gateway_clients',
      help: 'Distinct clients (client key or session) this gateway served per version in the last 5 minutes',
      labelNames: ['service', 'version'],
      registers,
      collect() {
        this.reset();
        const since = clock() - CLIENT_WINDOW_MS;
        for (const [key, c] of clients) {
          if (c.at < since) clients.delete(key);
          else this.inc({ service: c.service, version: c.version });
        }
      },
    });
    const breaker = deps.breaker;
    new Gauge({
      name: 'mcpship_breaker_state',
      help: 'Circuit breaker state per version as seen by this gateway: 1 for the current state (closed, open, half-open), 0 for the others',
      labelNames: ['service', 'version', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of breaker.list()) {
          for (const state of ['closed', 'open', 'half-open'] as const) this.set({ service: s.service, version: s.version, state }, s.state === state ? 1 : 0);
        }
      },
    });
    if (deps.capture) this.captureMetrics(deps.capture, registers);
  }

  private captureMetrics(capture: CaptureWriter, registers: Registry[]): void {
    const OUTCOME_COUNTERS = ['captured', 'written', 'spilled', 'replayed', 'quarantined', 'dropped'] as const;
    new Counter({
      name: 'mcpship_capture_messages_total',
      help: 'Captured messages since the gateway started: captured (handed to capture), written (stored from memory), spilled (waited in the disk spill), replayed (stored from the spill), quarantined, dropped (lost)',
      labelNames: ['outcome'],
      registers,
      collect() {
        const c = capture.counters;
        this.reset();
        for (const outcome of OUTCOME_COUNTERS) this.inc({ outcome }, c[outcome]);
      },
    });
    const gauges = [
      ['mcpship_capture_queue_messages', 'Captured messages in memory waiting to be written', 'buffered'],
      ['mcpship_capture_spill_pending_messages', 'Captured messages in the disk spill waiting for MongoDB', 'spillPending'],
      ['mcpship_capture_spill_bytes', 'Bytes of capture spill files on disk', 'spillBytes'],
    ] as const;
    for (const [name, help, key] of gauges) {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(capture.counters[key]);
        },
      });
    }
  }

  message(): void {}

  exchangeEnd(ctx: ExchangeContext, outcome: ExchangeOutcome): void {
    const methods = ctx.methods?.length ? ctx.methods.map(methodLabel) : [NO_METHOD];
    const result = outcomeOf(outcome);
    const seconds = outcome.latencyMs / 1000;
    for (const method of methods) {
      this.requests.inc({ service: ctx.service, version: ctx.version, method, outcome: result });
      this.latency.observe({ service: ctx.service, version: ctx.version, method }, seconds);
    }
    const client = `${ctx.service}\u0000${breakerClient(ctx)}`;
    this.clients.delete(client);
    this.clients.set(client, { service: ctx.service, version: ctx.version, at: this.clock() });
    if (this.clients.size > MAX_TRACKED_CLIENTS) this.clients.delete(this.clients.keys().next().value as string);
  }
}
