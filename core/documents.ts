import type { HealthCounts } from './health.ts';

/** The MongoDB documents mcpship writes: defined once here, imported everywhere else. */

export const VERSION_STATES = [
  'DEVELOPMENT',
  'VALIDATING',
  'STAGED',
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

export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed';

/** One running process of a version, as the runner reports it. */
export interface InstanceDoc {
  instanceId: string;
  service: string;
  version: string;
  /** The Streamable HTTP MCP endpoint the gateway proxies to (stdio servers are bridged). */
  url: string;
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
  /** Versions whose sessions must be refused (404) on their next request. */
  pulled: string[];
  updatedAt: Date;
}

/** A gateway session pinned to a version; shared so that any gateway routes it the same way. */
export interface SessionDoc {
  sessionId: string;
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

/** One captured JSON-RPC message. */
export interface MessageDoc {
  messageId: string;
  service: string;
  version: string;
  sessionId?: string;
  direction: MessageDirection;
  kind: 'request' | 'response' | 'notification' | 'error';
  method?: string;
  rpcId?: string | number | null;
  payload: unknown;
  truncated: boolean;
  size: number;
  at: Date;
  latencyMs?: number;
  transport: 'json' | 'sse';
}
