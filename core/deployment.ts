/** Inputs, state and controls of a deployment: the workflow, its activities and the API share these. */
import type { RolloutSettings } from './manifest.ts';

export type DeploymentMode = 'canary' | 'rollback';

export interface DeploymentInput {
  service: string;
  version: string;
  /** 'rollback': a deployment of an older version, straight to 100% once ready (when fastRollback). */
  mode: DeploymentMode;
  reason?: string;
}

export type DeploymentStage =
  | 'PREPARING'
  | 'STARTING'
  /** The replay gate runs: the candidate's instances are ready and get no user traffic yet. */
  | 'REPLAY'
  /** The replay gate found the candidate incompatible: it waits for an override (with a reason) or an abort. */
  | 'BLOCKED'
  | 'CANARY'
  | 'PROMOTING'
  | 'ACTIVE'
  /** Blue-green: promoted, the previous version's instances still running for an instant rollback. */
  | 'WARM'
  | 'ROLLING_BACK'
  | 'ROLLED_BACK'
  | 'ABORTED'
  | 'FAILED';

/** What the replay gate found (compat/replay-gate.ts), and who let a blocked version through. */
export interface ReplayGateState {
  decision: 'proven' | 'blocked' | 'unproven';
  reasons: string[];
  replayId?: string;
  workflowId: string;
  counts?: { replayed: number; equal: number; noise: number; differs: number; breaks: number; skipped: number };
  /** The worst class of the candidate's tool schema changes (compat/replay-schema.ts), when diffed. */
  schemaClass?: 'breaking' | 'risky' | 'additive' | 'none';
  override?: string;
}

export interface AnalysisResult {
  healthy: boolean;
  /**
   * Fewer work requests than analysis.minRequests (core/health.ts analyseStep): never healthy; a
   * failed check with analysis.requireTraffic, else the step is not judged.
   */
  inconclusive: boolean;
  reasons: string[];
  /** Work requests counted in the step. */
  requests: number;
  successRate: number | null;
  p99Ms: number | null;
  at: string;
}

export interface DeploymentState {
  service: string;
  version: string;
  mode: DeploymentMode;
  stage: DeploymentStage;
  /** The share of new sessions the version gets now, in percent. */
  weight: number;
  stepIndex: number;
  steps: number[];
  paused: boolean;
  /** The version that was active when the deployment started (the one a rollback returns to). */
  previous?: string;
  failedChecks: number;
  lastAnalysis?: AnalysisResult;
  /** Analyses of the current step that saw too little traffic and held it (analysis.onInconclusive). */
  inconclusiveHolds?: number;
  replayGate?: ReplayGateState;
  strategy?: 'canary' | 'blueGreen';
  /** Why the deployment ended the way it did, when it did not promote. */
  reason?: string;
}

export interface PreparedDeployment {
  dir: string;
  settings: RolloutSettings;
  previous?: string;
}

export interface BreachNotice {
  reasons: string[];
  at: string;
}
