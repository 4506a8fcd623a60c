import type { CompatCell } from '../compat/types.ts';
import type { ReplayItem, ReplayReport } from '../compat/replay-types.ts';
import type { HealthCounts } from './health.ts';

/** The MongoDB documents mcpship writes: defined once here, imported everywhere else. */

export const VERSION_STATES = [
  'DEVELOPMENT',
  'VALIDATING',
  'STAGED',
  /** The replay gate found the candidate incompatible: no user traffic until an override. */
  'BLOCKED',
  'CANARY',
  'ACTIVE',
  'ARCHIVED',
  'FAILED',
  'ROLLED_BACK',
  'ABORTED',
] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export interface StepResult {
  step: 'install' | 'lint' | 'test' | 'build';
  ok: boolean;
  exitCode: number | null;
  durationMs: number;
  /** The end of the step's output; the whole of it is in logFile. */
  outputTail: string;
  logFile: string;
  reason?: string;
}

export interface VersionDoc {
  service: string;
  version: string;
  state: VersionState;
  hash: string;
  files: string[];
  stagedDir?: string;
  archiveDir?: string;
  steps: StepResult[];
  tools: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  history: { state: VersionState; at: Date; reason?: string }[];
}

export interface ServiceDoc {
  name: string;
  state: 'PRESENT' | 'REMOVED';
  lastHash?: string;
  lastValidation?: { hash: string; ok: boolean; at: Date; reason?: string; version?: string };
  activeVersion?: string;
  canaryVersion?: string;
  updatedAt: Date;
}

export interface EventDoc {
  /** Strictly increasing across the database: the SSE event id and the pagination cursor. */
  seq: number;
  time: Date;
  service: string;
  version?: string;
  kind: string;
  status: 'info' | 'running' | 'ok' | 'failed';
  durationMs?: number;
  details?: Record<string, unknown>;
  workflowId?: string;
  runId?: string;
}

/** Desired state for the runner: run `instances` copies of this version from its immutable files. */
export interface PoolDoc {
  service: string;
  version: string;
  /** The staged or archived folder the instances start from. */
  dir: string;
  instances: number;
  /** 'stopped' drains and stops the instances (their InstanceDocs stay, state 'stopped'); deleting the PoolDoc removes them. */
  desired: 'running' | 'stopped';
  updatedAt: Date;
}

/**
 * A runner node: one runner process, the address gateways reach its instances at, and a lease it
 * renews. Once leaseUntil has passed, its instances are placed elsewhere and no longer routed to.
 */
export interface NodeDoc {
  nodeId: string;
  /** Host name or address gateways reach this node's instances at (MCPSHIP_ADVERTISE_HOST). */
  host: string;
  /** How many instances, of all pools together, may be placed on it. */
  capacity: number;
  leaseUntil: Date;
  /** Set at each start: a second runner under the same nodeId cannot renew the first one's lease. */
  incarnation: string;
  startedAt: Date;
}

/**
 * Which node runs one slot of a pool. Claimed by an insert under a unique (service, version, slot)
 * index, so that runners placing at once cannot both win; removed when the slot is no longer wanted
 * or its node's lease has expired.
 */
export interface PlacementDoc {
  service: string;
  version: string;
  slot: number;
  nodeId: string;
  placedAt: Date;
}

export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed';

/** One running process of a version, as the runner reports it. */
export interface InstanceDoc {
  instanceId: string;
  service: string;
  version: string;
  /** The Streamable HTTP MCP endpoint the gateway proxies to (stdio servers are bridged). */
  url: string;
  /** The runner node it runs on (NodeDoc.nodeId); absent on documents written before nodes. */
  nodeId?: string;
  pid?: number;
  state: InstanceState;
  restarts: number;
  lastError?: string;
  updatedAt: Date;
}

/**
 * Where a service's new sessions go. Weights are shares (they need not sum to 100); `stable` is
 * the fallback when another version's breaker is open or its weight is 0.
 */
export interface RoutingDoc {
  service: string;
  stable?: string;
  weights: Record<string, number>;
  /**
   * The same shares as a list. FerretDB (the embedded MongoDB) refuses field names containing
   * '.', and versions have dots, so a `weights` map keyed by version cannot be stored there:
   * writers use this list (with `weights: {}`); readers take it when present (core/routing.ts
   * routingWeights).
   */
  weightList?: { version: string; weight: number }[];
  /** Circuit-breaker thresholds of this service (core/health.ts BreakerThresholds), set by its rollout. */
  breaker?: Record<string, number>;
  /**
   * The rollout's step interval (manifest rollout.intervalSec), set with `breaker`: while more than
   * one version is routable the gateway caps results' ttlMs to it (api/gateway/cache-hints.ts).
   */
  stepIntervalMs?: number;
  /** Versions whose sessions must be refused (404) on their next request. */
  pulled: string[];
  /** The routingRevisions entry this document is a copy of (core/routing-store.ts). */
  rev?: number;
  updatedAt: Date;
}

/**
 * One routing change, claimed by inserting its number: unique per service, so of two writers that
 * read the same revision only one lands (core/routing-store.ts). The newest is the routing.
 */
export interface RoutingRevisionDoc extends RoutingDoc {
  rev: number;
}

/** A gateway session pinned to a version; shared so that any gateway routes it the same way. */
export interface SessionDoc {
  /**
   * The MCP session id (`Mcp-Session-Id`). It is the key because FerretDB 1.24 (SQLite) hands only
   * a filter that is exactly `{ _id: <string> }` to SQLite; any other filter reads and decodes every
   * document of the collection, so a session write would cost more with every session held.
   */
  _id: string;
  service: string;
  version: string;
  instanceId: string;
  createdAt: Date;
  lastSeenAt: Date;
  closedAt?: Date;
  /** The MCP protocol version negotiated in initialize (decides whether JSON-RPC batches may pass). */
  protocolVersion?: string;
}

/** Health counters (core/health.ts HealthCounts) of one version over one time bucket. */
export interface MetricBucketDoc extends HealthCounts {
  service: string;
  version: string;
  bucketStart: Date;
  bucketMs: number;
  /**
   * The gateway process that wrote the bucket: each document has exactly one writer (FerretDB does
   * not apply concurrent updates atomically), and readers sum over gateways.
   */
  gatewayId?: string;
}

export type MessageDirection = 'client_to_server' | 'server_to_client';

/**
 * One captured JSON-RPC message. The message itself is `raw`, its JSON text exactly as it passed
 * (MongoDB-wire servers refuse field names starting with `$` or containing `.`, which MCP payloads
 * are full of, and BSON cannot nest as deep as JSON); the other fields are extracted beside it for
 * queries. Read the message back with capturedMessage().
 */
export interface MessageDoc {
  messageId: string;
  service: string;
  version: string;
  sessionId?: string;
  /** The stateless revisions' client key (gateway's consistent-canary key), when the gateway knew it. */
  clientKey?: string;
  /** The MCP protocol revision of the exchange (e.g. `2025-11-25`, `2026-07-28`), when known. */
  protocolRevision?: string;
  direction: MessageDirection;
  kind: 'request' | 'response' | 'notification' | 'error';
  method?: string;
  rpcId?: string | number | null;
  /** `params.name` of a `tools/call`, on the request and on its response. */
  toolName?: string;
  /** On responses: the result's `isError` (a tool that failed). */
  isError?: boolean;
  /** The message's JSON text, byte for byte as it passed (re-serialised only where `redacted`). */
  raw: string;
  /** raw holds only the first maxPayloadBytes of the message. */
  truncated: boolean;
  /** Redaction replaced values, so raw is the redacted message re-serialised. */
  redacted: boolean;
  /** Bytes on the wire. */
  size: number;
  at: Date;
  latencyMs?: number;
  transport: 'json' | 'sse';
  /** MongoDB refused the document as first shaped; this record keeps what could be kept, and why. */
  quarantine?: { reason: string };
  /** The version the client asked for (X-Mcpship-Service-Version or a configured pin), when pinned. */
  versionAsked?: string;
  /** W3C trace id of the exchange (from the client's `traceparent`, or generated and forwarded). */
  traceId?: string;
  /** clientInfo of the client (from initialize, or a stateless request's `_meta`), when known. */
  clientName?: string;
  clientVersion?: string;
  /**
   * The transform chain between the client's version (versionAsked) and the version served
   * (compat/): transform ids, oldest first. `raw` is the message as its sender wrote it: the
   * client's shape for client_to_server, the served version's for server_to_client.
   */
  transforms?: string[];
}

/**
 * One cell of a service's compatibility matrix (compat/types.ts CompatCell), one document per
 * (service, version, source, columnKey): the round-trip test, the schema diff and differential
 * replay each write their own cells, so no two writers update one document.
 */
export interface CompatCellDoc extends CompatCell {
  service: string;
  version: string;
  /** compat/matrix.ts columnKey(column): e.g. `client:2026-07-28:claude:1.2` or `tool:add`. */
  columnKey: string;
}

/** A differential replay's report (compat/replay-types.ts), one per run, updated with its progress. */
export type ReplayReportDoc = ReplayReport & {
  /** The replay workflow's id and run. */
  workflowId: string;
  /** Attempts of the replay activity that resumed from a position (after a worker was lost). */
  resumes: { attempt: number; position: number; at: Date }[];
};

/**
 * A replay report settled by a reader (api/replay-settle.ts), keyed by the replay id: of readers
 * settling the same report at once, the one whose insert lands tells the end. (FerretDB 1.24 may
 * apply two racing conditional updates both, but it keeps _id unique.)
 */
export interface ReplaySettledDoc {
  _id: string;
  at: Date;
}

/** One replayed request of a run; upserted by (replayId, index) so a resumed attempt redoes nothing twice. */
export interface ReplayItemDoc extends ReplayItem {
  replayId: string;
}

export class CapturedMessageError extends Error {
  override name = 'CapturedMessageError';
}

/**
 * The original JSON-RPC message of a captured document, parsed from its exact text. Throws
 * CapturedMessageError for a document that does not hold the whole message (truncated).
 */
export function capturedMessage(doc: Pick<MessageDoc, 'messageId' | 'raw' | 'truncated'>): Record<string, unknown> {
  if (doc.truncated) throw new CapturedMessageError(`captured message ${doc.messageId} was stored cut (over the payload cap): it cannot be read back whole`);
  const value: unknown = JSON.parse(doc.raw);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CapturedMessageError(`captured message ${doc.messageId} is not a JSON-RPC message object`);
  }
  return value as Record<string, unknown>;
}

/**
 * A gateway's counters of one transform (compat/), cumulative since the gateway started; one
 * writer per document (gatewayId), readers sum over gateways. For health and the dashboard's
 * "transform success rate: forward / reverse / errors".
 */
export interface TransformMetricDoc {
  service: string;
  /** The transform's file, e.g. `transforms/1.0-to-2.0.ts`. */
  transformId: string;
  gatewayId: string;
  forwardApplied: number;
  forwardFailed: number;
  backwardApplied: number;
  backwardFailed: number;
  /** Time spent in the transform's functions, both ways. */
  durationMs: number;
  startedAt: Date;
  updatedAt: Date;
}
