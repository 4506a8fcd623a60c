/** Inputs and outputs of the validation pipeline: the workflow and its activities share these. */
import type { StepResult } from './documents.ts';

/** One real change of a service's source, as the watcher saw it. */
export interface SaveSignal {
  hash: string;
  changedPaths: string[];
  /** ISO time of the save. */
  at: string;
}

export interface ServiceWorkflowInput {
  service: string;
  /** The hash last validated (carried over continue-as-new so identical content starts nothing). */
  lastHash?: string;
  /** A save that arrived but was not yet handled when the previous run continued as new. */
  pending?: SaveSignal;
  /** Saves handled over the whole life of the workflow, across continue-as-new. */
  savesHandled?: number;
  /** Saves one run handles before it continues as new (default SAVES_PER_RUN). */
  maxSavesPerRun?: number;
  /** The save waiting for space on a full state disk, and how many times it was tried again. */
  waiting?: { hash: string; attempt: number };
}

export interface ServiceWorkflowState {
  service: string;
  /** waiting: a save refused by a full state disk is kept and tried again after a pause. */
  phase: 'idle' | 'validating' | 'waiting';
  validatingHash?: string;
  lastHash?: string;
  lastResult?: ValidationOutcome;
  savesHandled: number;
}

export interface StepPlan {
  step: StepResult['step'];
  command: string;
  timeoutSec: number;
}

export interface SnapshotResult {
  service: string;
  /** The hash of what was actually copied (a save may have happened since the signal). */
  hash: string;
  dir: string;
  files: string[];
  version: string;
  /** install (when there is one), then lint, test, build. */
  steps: StepPlan[];
  /** The manifest's rollout.autoDeploy: a staged version is deployed at once. */
  autoDeploy?: boolean;
}

export interface RunStepInput {
  service: string;
  hash: string;
  dir: string;
  plan: StepPlan;
}

export interface StageInput {
  service: string;
  hash: string;
  dir: string;
  files: string[];
  manifestVersion: string;
  changedPaths: string[];
  steps: StepResult[];
}

export interface StageResult {
  version: string;
  stagedDir: string;
  /** True when this content had been staged before: nothing new was written. */
  existing: boolean;
}

export type ValidationOutcome =
  | { ok: true; hash: string; version: string; existing: boolean }
  | { ok: false; hash: string; reason: string; step?: StepResult['step'] };
