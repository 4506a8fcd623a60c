import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { StepResult } from '../core/documents.ts';
import type { SaveSignal, ServiceWorkflowInput, ServiceWorkflowState, SnapshotResult, ValidationOutcome } from '../core/pipeline.ts';
import type { DeploymentInput } from '../core/deployment.ts';
import { DISK_FULL, diskFullPauseMs } from '../core/disk-full.ts';
import { McpService, McpStage, McpVersion } from '../core/search-attributes.ts';
import { deploymentWorkflowId } from '../core/workflow-ids.ts';

export const saveSignal = defineSignal<[SaveSignal]>('save');
export const stateQuery = defineQuery<ServiceWorkflowState>('state');

/** Saves handled by one run before it continues as new, keeping its history small. */
export const SAVES_PER_RUN = 50;

const { recordEvent } = proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds' });
const { checkTransforms, recordValidation, snapshotService, stageVersion } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['ManifestError', 'ServiceMissing'] },
});

function stepActivity(timeoutSec: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${timeoutSec + 60} seconds`,
    heartbeatTimeout: '10 seconds',
    // The process tree must be gone before a newer save's validation starts.
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    retry: { maximumAttempts: 3 },
  }).runValidationStep;
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/** Retries spent on a full state disk: the save is sound, there is just no room to validate it yet. */
function isDiskFull(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === DISK_FULL;
}

function isValidationFailure(err: unknown): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && ['ManifestError', 'ServiceMissing'].includes(err.cause.type ?? '');
}

/**
 * One long-lived workflow per service (id `service/<name>`): every real save arrives as a signal;
 * the newest one is validated (snapshot, install, lint, test, build, transforms) and, when it passes, staged.
 * A newer save cancels the validation under way.
 */
export async function serviceWorkflow(input: ServiceWorkflowInput): Promise<void> {
  const { service } = input;
  const ids = { workflowId: workflowInfo().workflowId, runId: workflowInfo().runId };
  let pending: SaveSignal | undefined = input.pending;
  let lastHash = input.lastHash;
  let savesHandled = input.savesHandled ?? 0;
  let handledThisRun = 0;
  const maxSavesPerRun = input.maxSavesPerRun ?? SAVES_PER_RUN;
  let running: { hash: string; scope: CancellationScope } | undefined;
  let lastResult: ValidationOutcome | undefined;
  let waiting = input.waiting;

  setHandler(saveSignal, (save) => {
    // Paths of a save not yet handled are kept: the newest content includes those changes too.
    const changedPaths = [...new Set([...(pending?.changedPaths ?? []), ...save.changedPaths])].sort();
    pending = { ...save, changedPaths };
    if (running && running.hash !== save.hash) running.scope.cancel();
  });
  setHandler(stateQuery, () => ({
    service,
    phase: running ? 'validating' : waiting ? 'waiting' : 'idle',
    ...(running ? { validatingHash: running.hash } : {}),
    ...(lastHash ? { lastHash } : {}),
    ...(lastResult ? { lastResult } : {}),
    savesHandled,
  }));

  const setStage = (stage: string) => upsertSearchAttributes([{ key: McpStage, value: stage }]);

  async function validate(save: SaveSignal): Promise<ValidationOutcome> {
    // A save tried again after a full disk was announced already, with its VALIDATION_WAITING.
    if (waiting?.hash !== save.hash) await recordEvent({ service, kind: 'VALIDATING', status: 'running', details: { hash: save.hash, changedPaths: save.changedPaths, savedAt: save.at }, ...ids });
    let snapshot: SnapshotResult;
    try {
      snapshot = await snapshotService(service);
    } catch (err) {
      if (!isValidationFailure(err)) throw err;
      return { ok: false, hash: save.hash, reason: failureMessage(err) };
    }
    const steps: StepResult[] = [];
    for (const plan of snapshot.steps) {
      const result = await stepActivity(plan.timeoutSec)({ service, hash: snapshot.hash, dir: snapshot.dir, plan });
      steps.push(result);
      if (!result.ok) return { ok: false, hash: snapshot.hash, reason: result.reason ?? `${plan.step} failed`, step: plan.step };
    }
    if (patched('transforms-check')) {
      const check = await checkTransforms({ service, dir: snapshot.dir, version: snapshot.version });
      if (!check.ok) return { ok: false, hash: snapshot.hash, reason: check.reason };
    }
    const staged = await stageVersion({
      service,
      hash: snapshot.hash,
      dir: snapshot.dir,
      files: snapshot.files,
      manifestVersion: snapshot.version,
      changedPaths: save.changedPaths,
      steps,
    });
    if (!staged.existing && snapshot.autoDeploy && patched('auto-deploy')) await startDeployment(staged.version);
    return { ok: true, hash: snapshot.hash, version: staged.version, existing: staged.existing };
  }

  /** A staged version goes out as a canary; the deployment outlives this run (continue-as-new). */
  async function startDeployment(version: string): Promise<void> {
    const input: DeploymentInput = { service, version, mode: 'canary', reason: 'staged' };
    await startChild('deploymentWorkflow', {
      workflowId: deploymentWorkflowId(service, version),
      args: [input],
      parentClosePolicy: 'ABANDON',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [
        { key: McpService, value: service },
        { key: McpVersion, value: version },
        { key: McpStage, value: 'PREPARING' },
      ],
    });
  }

  for (;;) {
    await condition(() => pending !== undefined || handledThisRun >= maxSavesPerRun || workflowInfo().continueAsNewSuggested);
    if (pending === undefined || handledThisRun >= maxSavesPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(() => running === undefined);
      await continueAsNew<typeof serviceWorkflow>({
        service,
        ...(lastHash ? { lastHash } : {}),
        ...(pending ? { pending } : {}),
        savesHandled,
        ...(waiting ? { waiting } : {}),
        ...(input.maxSavesPerRun ? { maxSavesPerRun: input.maxSavesPerRun } : {}),
      });
    }
    const save = pending!;
    pending = undefined;
    if (save.hash === lastHash) continue;

    let diskFull: string | undefined;
    const scope = new CancellationScope();
    running = { hash: save.hash, scope };
    setStage('VALIDATING');
    try {
      lastResult = await scope.run(() => validate(save));
      lastHash = lastResult.hash;
      await recordValidation(service, lastResult);
      if (lastResult.ok) {
        if (lastResult.existing) {
          await recordEvent({ service, version: lastResult.version, kind: 'ALREADY_STAGED', status: 'info', details: { hash: lastResult.hash }, ...ids });
        }
        setStage('STAGED');
      } else {
        await recordEvent({ service, kind: 'VALIDATION_FAILED', status: 'failed', details: { hash: lastResult.hash, reason: lastResult.reason, ...(lastResult.step ? { step: lastResult.step } : {}) }, ...ids });
        setStage('FAILED');
      }
    } catch (err) {
      if (isCancellation(err)) {
        await recordEvent({ service, kind: 'VALIDATION_CANCELLED', status: 'info', details: { hash: save.hash, reason: 'a newer save arrived' }, ...ids });
      } else if (isDiskFull(err) && patched('disk-full-wait')) {
        diskFull = failureMessage(err);
      } else {
        // Retries are spent (worker trouble...): this save failed, the service goes on.
        lastResult = { ok: false, hash: save.hash, reason: `validation could not run: ${failureMessage(err)}` };
        await recordValidation(service, lastResult);
        await recordEvent({ service, kind: 'VALIDATION_FAILED', status: 'failed', details: { hash: save.hash, reason: lastResult.reason }, ...ids });
        setStage('FAILED');
      }
    } finally {
      running = undefined;
      if (diskFull === undefined) savesHandled++;
      handledThisRun++;
    }
    if (diskFull === undefined) waiting = undefined;
    else await waitForSpace(save, diskFull);
  }

  /**
   * Keeps a save refused by a full disk and tries it again after a pause that grows, unless a newer
   * save arrives first: that one replaces it, carrying its changed paths along.
   */
  async function waitForSpace(save: SaveSignal, message: string): Promise<void> {
    const attempt = waiting?.hash === save.hash ? waiting.attempt + 1 : 0;
    if (attempt === 0) await recordEvent({ service, kind: 'VALIDATION_WAITING', status: 'info', details: { hash: save.hash, reason: `${message}; retrying when space returns` }, ...ids });
    setStage('WAITING');
    waiting = { hash: save.hash, attempt };
    const newer = await condition(() => pending !== undefined, diskFullPauseMs(attempt));
    const changedPaths = [...new Set([...save.changedPaths, ...(pending?.changedPaths ?? [])])].sort();
    pending = { ...(newer ? pending! : save), changedPaths };
  }
}
