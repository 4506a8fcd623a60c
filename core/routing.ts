/**
 * The routing decision and the JSON-RPC rules the gateway enforces, as pure functions: no I/O, no
 * clock, randomness passed in, so that every rule is unit-tested without a network.
 */
import { createHash } from 'node:crypto';
import type { RoutingDoc } from './documents.ts';

// ---------------------------------------------------------------------------------------------
// Versions and instances

export type RoutingView = Pick<RoutingDoc, 'stable' | 'weights' | 'pulled'>;

export interface PickOptions {
  /** Versions to avoid (breaker open, no ready instance): used only when nothing else is left. */
  excluded?: ReadonlySet<string>;
  /** A version asked for by name (the X-Mcpship-Version test header); weight 0 is fine, pulled is not. */
  forced?: string;
}

/**
 * A RoutingDoc's shares by version: `weightList` when present (what FerretDB can store), else the
 * `weights` map (fine on MongoDB proper). Later entries of a list win over earlier ones.
 */
export function routingWeights(doc: Pick<RoutingDoc, 'weights' | 'weightList'>): Record<string, number> {
  if (!Array.isArray(doc.weightList)) return { ...(doc.weights ?? {}) };
  const weights: Record<string, number> = {};
  for (const entry of doc.weightList) if (typeof entry?.version === 'string') weights[entry.version] = Number(entry.weight);
  return weights;
}

/** The list form of a weights map, for writers (sorted, so equal maps give equal documents). */
export function weightListOf(weights: Record<string, number>): { version: string; weight: number }[] {
  return Object.entries(weights)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([version, weight]) => ({ version, weight }));
}

function positiveWeight(w: unknown): w is number {
  return typeof w === 'number' && Number.isFinite(w) && w > 0;
}

function weighted(candidates: [string, number][], rand: () => number): string | undefined {
  const total = candidates.reduce((sum, [, w]) => sum + w, 0);
  if (!(total > 0)) return undefined;
  let point = rand() * total;
  for (const [version, w] of candidates) {
    point -= w;
    if (point < 0) return version;
  }
  // rand() may return a value so close to 1 that rounding leaves point at 0.
  return candidates[candidates.length - 1]![0];
}

/**
 * The version a new session (or a stateless request) goes to: a weighted choice among versions
 * with weight > 0 that are neither pulled nor excluded; else `stable`; else — so that a version
 * whose breaker is open still answers with errors rather than "unknown service" — an excluded
 * version. undefined only when nothing at all is routable (no weight, no stable, all pulled).
 * Callers can tell the last resort by checking the result against `excluded`.
 */
export function pickVersion(routing: RoutingView, rand: () => number, opts: PickOptions = {}): string | undefined {
  const pulled = new Set(routing.pulled ?? []);
  const excluded = opts.excluded ?? new Set<string>();
  if (opts.forced !== undefined) {
    const known = Object.hasOwn(routing.weights, opts.forced) || routing.stable === opts.forced;
    return known && !pulled.has(opts.forced) ? opts.forced : undefined;
  }
  // A fixed order, so that the same rand() always gives the same version whatever the document's
  // key order: candidates by name, the stable version last. With the stable version last, a canary's
  // range is [0, its share): raising its share only widens it, which keyed picks rely on.
  const live = Object.entries(routing.weights)
    .filter((e): e is [string, number] => positiveWeight(e[1]) && !pulled.has(e[0]))
    .sort(([a], [b]) => (a === routing.stable ? 1 : b === routing.stable ? -1 : a < b ? -1 : a > b ? 1 : 0));
  const healthy = live.filter(([v]) => !excluded.has(v));
  const stable = routing.stable !== undefined && !pulled.has(routing.stable) ? routing.stable : undefined;
  return (
    weighted(healthy, rand) ??
    (stable !== undefined && !excluded.has(stable) ? stable : undefined) ??
    stable ??
    weighted(live, rand)
  );
}

/**
 * Where a client falls in a service's weight ranges, from its key alone: `point` in [0, 1) stands
 * in for rand() in pickVersion, `turn` for the round-robin turn in pickInstance. The same key
 * always gets the same draw (on every gateway), so a client stays on its version while the weights
 * hold, and — the stable version's range being last — a canary's share only ever grows by adding
 * clients. The service is part of the hash so that one client is not a canary everywhere at once.
 */
export function keyedDraw(service: string, clientKey: string): { point: number; turn: number } {
  const digest = createHash('sha256').update(service).update('\u0000').update(clientKey).digest();
  // 48 bits: an exact double in [0, 1), far finer than any weight.
  return { point: digest.readUIntBE(0, 6) / 2 ** 48, turn: digest.readUInt32BE(8) };
}

/** Every version pickVersion could ever return for this document (for breaker and health checks). */
export function routableVersions(routing: RoutingView): string[] {
  const pulled = new Set(routing.pulled ?? []);
  const versions = new Set(Object.entries(routing.weights).filter(([, w]) => positiveWeight(w)).map(([v]) => v));
  if (routing.stable !== undefined) versions.add(routing.stable);
  return [...versions].filter((v) => !pulled.has(v)).sort();
}

/**
 * Round robin: the instance for the `turn`-th pick among those ready, ordered by instanceId so
 * that every caller sees the same ring.
 */
export function pickInstance<T extends { instanceId: string; state: string }>(instances: readonly T[], turn: number): T | undefined {
  const ready = instances.filter((i) => i.state === 'ready').sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
  if (ready.length === 0) return undefined;
  const index = ((Math.trunc(turn) % ready.length) + ready.length) % ready.length;
  return ready[index];
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC

export type JsonRpcId = string | number;
export type JsonRpcMessage = Record<string, unknown>;

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const METHOD_NOT_FOUND = -32601;
export const INTERNAL_ERROR = -32603;
/** Implementation-defined server errors, as the MCP SDK uses them. */
export const SERVER_ERROR = -32000;
export const REQUEST_TIMEOUT = -32001;

export interface JsonRpcErrorBody {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: { code: number; message: string; data?: unknown };
}

export function jsonRpcError(code: number, message: string, id: JsonRpcId | null = null, data?: unknown): JsonRpcErrorBody {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

export type MessageKind = 'request' | 'notification' | 'response';

export interface Classified {
  kind: MessageKind;
  method?: string;
  id?: JsonRpcId | null;
  /** A request whose method is `initialize`. */
  initialize: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is JsonRpcId => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/**
 * What a message is, or why it is not a JSON-RPC 2.0 message as MCP uses it: MCP forbids null
 * request ids and asks for params to be an object.
 */
export function classifyMessage(msg: unknown): Classified | { invalid: string; id: JsonRpcId | null } {
  if (!isObject(msg)) return { invalid: 'a JSON-RPC message must be an object', id: null };
  const id = isId(msg.id) ? msg.id : null;
  if (msg.jsonrpc !== '2.0') return { invalid: 'jsonrpc must be "2.0"', id };
  if ('method' in msg) {
    if (typeof msg.method !== 'string' || msg.method === '') return { invalid: 'method must be a non-empty string', id };
    if ('params' in msg && msg.params !== undefined && !isObject(msg.params)) return { invalid: 'params must be an object', id };
    if ('result' in msg || 'error' in msg) return { invalid: 'a request carries no result or error', id };
    if (!('id' in msg)) return { kind: 'notification', method: msg.method, initialize: false };
    if (!isId(msg.id)) return { invalid: 'a request id must be a string or a number', id: null };
    return { kind: 'request', method: msg.method, id: msg.id, initialize: msg.method === 'initialize' };
  }
  const hasResult = 'result' in msg;
  const hasError = 'error' in msg;
  if (hasResult === hasError) return { invalid: 'a message needs a method, or exactly one of result and error', id };
  if (!('id' in msg) || !(isId(msg.id) || msg.id === null)) return { invalid: 'a response id must be a string, a number or null', id: null };
  if (hasError) {
    const e = msg.error;
    if (!isObject(e) || !Number.isInteger(e.code) || typeof e.message !== 'string') return { invalid: 'error must have an integer code and a message', id };
  }
  return { kind: 'response', id: msg.id as JsonRpcId | null, initialize: false };
}

export function isClassified(c: ReturnType<typeof classifyMessage>): c is Classified {
  return 'kind' in c;
}

export type ParsedBody =
  | { ok: true; messages: JsonRpcMessage[]; classified: Classified[]; batch: boolean }
  | { ok: false; httpStatus: 400; error: JsonRpcErrorBody };

/** Parses a POST body into JSON-RPC messages: -32700 when it is not JSON, -32600 when it is not JSON-RPC. */
export function parseJsonRpcBody(body: string | Uint8Array): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return { ok: false, httpStatus: 400, error: jsonRpcError(PARSE_ERROR, 'Parse error: the body is not valid JSON') };
  }
  const batch = Array.isArray(value);
  const items: unknown[] = batch ? (value as unknown[]) : [value];
  if (items.length === 0) return { ok: false, httpStatus: 400, error: jsonRpcError(INVALID_REQUEST, 'Invalid Request: empty batch') };
  const classified: Classified[] = [];
  for (const [index, item] of items.entries()) {
    const c = classifyMessage(item);
    if (!isClassified(c)) {
      const where = batch ? ` (batch item ${index})` : '';
      return { ok: false, httpStatus: 400, error: jsonRpcError(INVALID_REQUEST, `Invalid Request: ${c.invalid}${where}`, batch ? null : c.id) };
    }
    classified.push(c);
  }
  if (batch && classified.some((c) => c.initialize)) {
    return { ok: false, httpStatus: 400, error: jsonRpcError(INVALID_REQUEST, 'Invalid Request: initialize must not be part of a batch') };
  }
  return { ok: true, messages: items as JsonRpcMessage[], classified, batch };
}

/** JSON-RPC batches were part of MCP 2025-03-26 and removed in 2025-06-18 (dates compare as strings). */
export const BATCHES_REMOVED_IN = '2025-06-18';

/**
 * Whether a batch may pass for this protocol version. With no version known the MCP spec says to
 * assume 2025-03-26, which allowed batches.
 */
export function batchesAllowed(protocolVersion: string | undefined): boolean {
  return protocolVersion === undefined || protocolVersion < BATCHES_REMOVED_IN;
}

/** The ids of the requests among the messages: each one expects a response. */
export function requestIds(classified: readonly Classified[]): JsonRpcId[] {
  return classified.filter((c) => c.kind === 'request' && c.id !== undefined && c.id !== null).map((c) => c.id as JsonRpcId);
}
