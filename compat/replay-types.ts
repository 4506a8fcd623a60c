/**
 * Differential replay's shapes (issue 9, must-have 4): what a run is asked for, the outcome of each
 * replayed request, and the report. Shared by the pure modules in compat/, the replay activities,
 * the workflow, the API and the CLI. The stored documents are in core/documents.ts.
 */
import type { CompatCounts, Difference, PathCount, SchemaDiffReport } from './types.ts';

/** Which captured traffic a replay picks. */
export interface ReplaySelection {
  /** Captured messages of this version are replayed (default: the service's active version). */
  baseline?: string;
  /** Time window of the capture, ISO dates; `until` defaults to the replay's start. */
  since?: string;
  until?: string;
  /** Only `tools/call`s of these tools are compared (their sessions' other requests still run). */
  tools?: string[];
  /** Only traffic of these clients (clientInfo name, or the stateless client key). */
  clients?: string[];
  /** At most this many requests to compare; whole sessions are kept together. */
  sampleSize?: number;
}

export interface ReplayInput {
  service: string;
  candidate: string;
  selection?: ReplaySelection;
  /** Who asked: `api`, `cli`, `gate` (the deployment workflow). */
  trigger: 'api' | 'cli' | 'gate';
}

/** A tool's fate under the side-effect policy. */
export interface ToolPolicy {
  replay: boolean;
  /** Why (the annotation that decided, or the manifest's allow-list). */
  reason: string;
}

/**
 * One compared request. equal: candidate answered as the stable version does; noise: it differs
 * only where stable differs from itself; differs: a difference beyond the noise; breaks: the
 * candidate answered with an error (JSON-RPC error, tool error, no answer) where stable did not;
 * skipped: not sent (side-effect policy, or a capture that cannot be read back whole).
 */
export type ReplayOutcome = 'equal' | 'noise' | 'differs' | 'breaks' | 'skipped';

/**
 * What one request did, before noise is judged (noise needs every request's differences):
 * stored per request so a resumed run keeps what was done before the worker went away.
 */
export interface ReplayItem {
  /** Position in the plan (unique within the replay). */
  index: number;
  method: string;
  tool?: string;
  /** Matrix client column: protocol revision and clientInfo as captured. */
  protocolRevision?: string;
  clientName?: string;
  clientVersion?: string;
  messageId: string;
  /** Set when the request was not compared. */
  skipped?: string;
  /** The candidate broke where stable did not (the reason). */
  broke?: string;
  /** candidate vs stable-now, and stable-now vs the capture (the noise sample). */
  candidateDiffs: Difference[];
  noiseDiffs: Difference[];
}

/** A replay's counts: the matrix cell's shape. */
export type OutcomeCounts = CompatCounts;

/** A path of one tool whose candidate differences clearly exceed the noise (Diffy's rule), or a noisy one. */
export interface PathVerdict {
  tool: string;
  path: string;
  candidateRate: number;
  noiseRate: number;
  significant: boolean;
}

export interface ReplaySample {
  index: number;
  tool?: string;
  method: string;
  outcome: ReplayOutcome;
  reason?: string;
  diffs: Difference[];
}

/** A replay gate's thresholds (manifest rollout.replayGate). */
export interface GateThresholds {
  maxBreakingShare: number;
  maxDifferingShare: number;
  minMessages: number;
}

export interface GateVerdict {
  /** proven: under the thresholds with enough messages; blocked: over them; unproven: too few messages to judge. */
  decision: 'proven' | 'blocked' | 'unproven';
  reasons: string[];
}

export type ReplayStatus = 'RUNNING' | 'DONE' | 'CANCELLED' | 'FAILED';

export interface ReplayReport {
  replayId: string;
  service: string;
  candidate: string;
  baseline: string;
  trigger: ReplayInput['trigger'];
  status: ReplayStatus;
  selection: ReplaySelection;
  /** Requests picked / compared so far (progress). */
  total: number;
  done: number;
  counts: OutcomeCounts;
  perTool: Record<string, OutcomeCounts>;
  /** Why tools were skipped, per tool. */
  skippedTools: Record<string, string>;
  topPaths: PathCount[];
  noisyPaths: PathVerdict[];
  samples: ReplaySample[];
  gate?: GateVerdict & { thresholds: GateThresholds };
  /**
   * The stable and candidate tool lists diffed, weighted by the window's captured calls (absent
   * when nothing was captured: there is no usage to weigh).
   */
  schema?: SchemaDiffReport;
  startedAt: Date;
  finishedAt?: Date;
  durationMs?: number;
  error?: string;
}
