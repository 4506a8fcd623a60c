/**
 * The routing decision engine: for one request, which version and instance, or which JSON-RPC
 * error instead. It reads the cached routing, the session table and the breaker; it does no
 * proxying, so every answer it can give is one return value.
 */
import type { InstanceDoc, RoutingDoc } from '../../core/documents.ts';
import {
  batchesAllowed,
  INVALID_REQUEST,
  jsonRpcError,
  keyedDraw,
  pickInstance,
  pickVersion,
  routableVersions,
  SERVER_ERROR,
  type JsonRpcErrorBody,
  type JsonRpcId,
  type RoutingView,
} from '../../core/routing.ts';
import type { Generation } from './protocol-generation.ts';
import type { RoutingCache, ServiceRoutes } from './routing-cache.ts';
import type { SessionRoute, SessionTable } from './session-table.ts';

/** What the gateway needs of the circuit breaker (api/gateway/breaker.ts implements it). */
export interface BreakerView {
  /** Not closed: open, or half-open and not yet proven. */
  isOpen(service: string, version: string): boolean;
  /** Closed: true. Open: false. Half-open: true for the one probe it lets through (so call it only to send). */
  allowRequest(service: string, version: string): boolean;
  /**
   * Whether a version it refuses is refused even with nothing else left (it leaves requests
   * unanswered). Otherwise the last routable version gets the request and answers for itself:
   * its tool-level errors serve a client better than a 503. Absent: refused.
   */
  failFast?(service: string, version: string): boolean;
}

/** The MCP SDK's code for an unknown session; the HTTP status (404) is what clients act on. */
export const SESSION_NOT_FOUND = -32001;

export interface RequestFacts {
  service: string;
  method: 'GET' | 'POST' | 'DELETE';
  sessionId?: string;
  /** X-Mcpship-Version: a version asked for by name, for new sessions only. */
  forcedVersion?: string;
  /** MCP-Protocol-Version request header. */
  protocolVersion?: string;
  /**
   * The request's protocol generation (protocol-generation.ts). Stateless requests never use a
   * session, whatever their headers or the version's other clients say. Absent: the session one.
   */
  generation?: Generation;
  /**
   * Who is asking (client-key.ts). Requests that no session pins — stateless ones, and
   * sessionless requests of the session revisions — go to the version and instance this key hashes
   * to, so one client stays on one version. Absent: a weighted random pick per request.
   */
  clientKey?: string;
  /** POST only: the body is an initialize request. */
  initialize: boolean;
  /** POST only: the body is a JSON-RPC batch. */
  batch: boolean;
  /** The id to answer errors with (a single request's id), else null. */
  rpcId: JsonRpcId | null;
  /** A retry after the chosen instance refused the connection: this version again, if another of its instances is usable. */
  preferVersion?: string;
}

export type Decision =
  | {
      kind: 'proxy';
      version: string;
      instance: InstanceDoc;
      /** Set when the request belongs to a known session. */
      session?: SessionRoute & { sessionId: string };
      /** An initialize without a session: the response's Mcp-Session-Id opens one. */
      opensSession: boolean;
      /** Set while more than one version is routable: results' ttlMs must not exceed it (cache-hints.ts). */
      ttlCapMs?: number;
    }
  | {
      kind: 'reject';
      status: number;
      body: JsonRpcErrorBody;
      /** The session is over for every gateway (pulled version, instance gone). */
      closeSession?: string;
    };

const reject = (status: number, code: number, message: string, id: JsonRpcId | null): Decision => ({ kind: 'reject', status, body: jsonRpcError(code, message, id) });

/**
 * The cap on cache lifetimes while a rollout holds more than one version routable, when the
 * routing document does not say its step interval: the manifest's default step (30 s).
 */
export const DEFAULT_STEP_INTERVAL_MS = 30_000;

/** The ttlMs cap for this routing: the step interval while more than one version is routable. */
export function ttlCap(routing: RoutingView & Pick<RoutingDoc, 'stepIntervalMs'>): number | undefined {
  if (routableVersions(routing).length < 2) return undefined;
  const step = routing.stepIntervalMs;
  return typeof step === 'number' && Number.isFinite(step) && step >= 0 ? Math.floor(step) : DEFAULT_STEP_INTERVAL_MS;
}

/**
 * How long an instance that refused a connection gets no new traffic: long enough to cover the
 * moments before routing learns its node is gone (the node's lease ends), short enough that an
 * instance that merely restarted is back soon.
 */
export const REFUSED_SKIP_MS = 3_000;

export interface DeciderDeps {
  cache: Pick<RoutingCache, 'get'>;
  sessions: Pick<SessionTable, 'get'>;
  breaker?: BreakerView;
  rand?: () => number;
  /** For tests: the clock of the refused-instance memory (performance.now()). */
  now?: () => number;
}

type ReadyOf = (version: string) => readonly InstanceDoc[];

export class Decider {
  private readonly turns = new Map<string, number>();
  /** Per service and version: did an initialize response carry a session id? Learned, not configured. */
  private readonly modes = new Map<string, 'stateful' | 'stateless'>();
  /** Instances that refused a connection lately, until when they are skipped. */
  private readonly refused = new Map<string, number>();
  private readonly rand: () => number;
  private readonly now: () => number;

  constructor(private readonly deps: DeciderDeps) {
    this.rand = deps.rand ?? Math.random;
    this.now = deps.now ?? (() => performance.now());
  }

  /** The instance refused a connection: new traffic avoids it for REFUSED_SKIP_MS. */
  noteRefused(instanceId: string): void {
    this.refused.set(instanceId, this.now() + REFUSED_SKIP_MS);
  }

  noteSessionMode(service: string, version: string, mode: 'stateful' | 'stateless'): void {
    this.modes.set(`${service}\u0000${version}`, mode);
  }

  async decide(facts: RequestFacts): Promise<Decision> {
    const routes = await this.deps.cache.get(facts.service);
    const routing = routes.routing;
    if (!routing) return reject(404, SERVER_ERROR, `Unknown service: ${facts.service}`, facts.rpcId);
    const decision = await this.route(facts, routes, routing);
    if (decision.kind !== 'proxy') return decision;
    const cap = ttlCap(routing);
    return cap === undefined ? decision : { ...decision, ttlCapMs: cap };
  }

  private async route(facts: RequestFacts, routes: ServiceRoutes, routing: RoutingView): Promise<Decision> {
    const stateless = facts.generation === 'stateless';
    if (facts.sessionId !== undefined && !stateless) return this.forSession(facts, facts.sessionId, routes, routing);
    if (routableVersions(routing).length === 0) return reject(404, SERVER_ERROR, `Service ${facts.service} has no routable version`, facts.rpcId);
    return this.forNewTraffic(facts, routes, routing);
  }

  private async forSession(facts: RequestFacts, sessionId: string, routes: ServiceRoutes, routing: RoutingView): Promise<Decision> {
    const route = await this.deps.sessions.get(sessionId);
    if (!route || route.service !== facts.service) return reject(404, SESSION_NOT_FOUND, 'Session not found', facts.rpcId);
    const gone = (why: string): Decision => ({ kind: 'reject', status: 404, body: jsonRpcError(SESSION_NOT_FOUND, `Session not found: ${why}`, facts.rpcId), closeSession: sessionId });
    if (routing.pulled.includes(route.version)) return gone(`version ${route.version} was pulled`);
    const instance = routes.ready.get(route.version)?.find((i) => i.instanceId === route.instanceId);
    if (!instance) return gone('its instance is no longer serving');
    const breaker = this.deps.breaker;
    if (breaker && !breaker.allowRequest(facts.service, route.version)) {
      // With somewhere else to go, the client is sent there by the spec's own route: a new session.
      const open = this.openVersions(facts.service, routing);
      open.add(route.version);
      const fallback = pickVersion(routing, this.rand, { excluded: new Set([...open, ...this.withoutInstances(this.usable(routes, routing), routing)]) });
      if (fallback !== undefined && !open.has(fallback) && routes.ready.has(fallback)) return gone(`version ${route.version} is failing`);
      if (this.refuses(facts.service, route.version)) return reject(503, SERVER_ERROR, `Service unavailable: version ${route.version} is failing (circuit open)`, facts.rpcId);
    }
    if (facts.batch && !batchesAllowed(route.protocolVersion ?? facts.protocolVersion)) return this.noBatches(facts);
    return { kind: 'proxy', version: route.version, instance, session: { ...route, sessionId }, opensSession: false };
  }

  /**
   * An initialize (a version by weight: the new session stays there), or a request no session pins
   * (a version by client key, else by weight).
   */
  private forNewTraffic(facts: RequestFacts, routes: ServiceRoutes, routing: RoutingView): Decision {
    const stateless = facts.generation === 'stateless';
    // Batches are gone from 2025-06-18 on; the stateless revisions answer for themselves.
    if (!stateless && facts.batch && !batchesAllowed(facts.protocolVersion)) return this.noBatches(facts);
    const draw = !facts.initialize && facts.clientKey !== undefined ? keyedDraw(facts.service, facts.clientKey) : undefined;
    const ready = this.usable(routes, routing);
    const version = this.chooseVersion(facts, ready, routing, draw ? () => draw.point : this.rand);
    if (typeof version !== 'string') return version;
    const key = `${facts.service}\u0000${version}`;
    // What a version's session clients taught us says nothing about a stateless request.
    if (!stateless && !facts.initialize && this.modes.get(key) === 'stateful') {
      return reject(400, SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required (send initialize first)', facts.rpcId);
    }
    let turn = draw?.turn;
    if (turn === undefined) {
      turn = this.turns.get(key) ?? 0;
      this.turns.set(key, turn + 1);
    }
    // A keyed client also keeps its instance: state a server hands out (a 2026 requestState) may be
    // valid only where it was made.
    const instance = pickInstance(ready(version), turn);
    if (!instance) return reject(503, SERVER_ERROR, `Service unavailable: no ready instance of ${facts.service} ${version}`, facts.rpcId);
    return { kind: 'proxy', version, instance, opensSession: facts.initialize && !stateless };
  }

  private chooseVersion(facts: RequestFacts, ready: ReadyOf, routing: RoutingView, rand: () => number): string | Decision {
    const breaker = this.deps.breaker;
    if (facts.forcedVersion === undefined && this.canRetryOn(facts, ready, routing)) return facts.preferVersion!;
    if (facts.forcedVersion !== undefined) {
      const forced = pickVersion(routing, rand, { forced: facts.forcedVersion });
      if (forced === undefined) return reject(404, SERVER_ERROR, `Version ${facts.forcedVersion} of ${facts.service} is not routable`, facts.rpcId);
      if (breaker && !breaker.allowRequest(facts.service, forced) && this.refuses(facts.service, forced)) return reject(503, SERVER_ERROR, `Service unavailable: version ${forced} is failing (circuit open)`, facts.rpcId);
      return forced;
    }
    const excluded = new Set([...this.openVersions(facts.service, routing), ...this.withoutInstances(ready, routing)]);
    for (;;) {
      const version = pickVersion(routing, rand, { excluded });
      if (version === undefined) return reject(404, SERVER_ERROR, `Service ${facts.service} has no routable version`, facts.rpcId);
      if (!breaker || breaker.allowRequest(facts.service, version)) return version;
      // Only a version that was the last resort already can be refused here: nothing else is left.
      if (excluded.has(version)) return this.refuses(facts.service, version) ? reject(503, SERVER_ERROR, `Service unavailable: version ${version} is failing (circuit open)`, facts.rpcId) : version;
      excluded.add(version);
    }
  }

  private refuses(service: string, version: string): boolean {
    return this.deps.breaker?.failFast?.(service, version) ?? true;
  }

  private openVersions(service: string, routing: RoutingView): Set<string> {
    const breaker = this.deps.breaker;
    return new Set(breaker ? routableVersions(routing).filter((v) => breaker.isOpen(service, v)) : []);
  }

  /** A refused request's version still serves: routable, another ready instance, breaker closed. */
  private canRetryOn(facts: RequestFacts, ready: ReadyOf, routing: RoutingView): boolean {
    const version = facts.preferVersion;
    return version !== undefined && routableVersions(routing).includes(version) && ready(version).length > 0 && !this.deps.breaker?.isOpen(facts.service, version);
  }

  private withoutInstances(ready: ReadyOf, routing: RoutingView): string[] {
    return routableVersions(routing).filter((v) => ready(v).length === 0);
  }

  /**
   * A version's ready instances less those that refused a connection lately — unless that leaves
   * the service none at all: then trying one beats refusing every request.
   */
  private usable(routes: ServiceRoutes, routing: RoutingView): ReadyOf {
    const all: ReadyOf = (v) => routes.ready.get(v) ?? [];
    if (this.refused.size === 0) return all;
    const now = this.now();
    for (const [id, until] of this.refused) if (until <= now) this.refused.delete(id);
    const left: ReadyOf = (v) => all(v).filter((i) => !this.refused.has(i.instanceId));
    return routableVersions(routing).some((v) => left(v).length > 0) ? left : all;
  }

  private noBatches(facts: RequestFacts): Decision {
    return reject(400, INVALID_REQUEST, `Invalid Request: JSON-RPC batches are not supported from protocol version 2025-06-18 on`, facts.rpcId);
  }
}
