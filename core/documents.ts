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
