import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { BreachNotice, DeploymentInput, DeploymentStage, DeploymentState, ReplayGateState } from '../core/deployment.ts';
import type { RolloutSettings } from '../core/manifest.ts';
import { McpService, McpStage, McpVersion } from '../core/search-attributes.ts';
import { deploymentWorkflowId, replayWorkflowId } from '../core/workflow-ids.ts';
import { replayWorkflow } from './replay-workflow.ts';

export const breachSignal = defineSignal<[BreachNotice]>('breach');
export const supersedeSignal = defineSignal<[{ by: string }]>('supersede');
export const deploymentStateQuery = defineQuery<DeploymentState>('state');
export const promoteUpdate = defineUpdate<DeploymentState>('promote');
export const pauseUpdate = defineUpdate<DeploymentState>('pause');
export const resumeUpdate = defineUpdate<DeploymentState>('resume');
export const abortUpdate = defineUpdate<DeploymentState, [string | undefined]>('abort');
export const setWeightUpdate = defineUpdate<DeploymentState, [number]>('setWeight');
/** Lets a version the replay gate blocked go on to its canary; the reason is kept with the gate's report. */
export const overrideUpdate = defineUpdate<DeploymentState, [string]>('override');

const { recordEvent } = proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds' });
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['NotFound', 'IllegalTransition'] },
});
const waits = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['InstancesNotReady'] },
});
/** Undoing must happen however long MongoDB is away: no attempt limit, backoff capped. */
const compensate = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '30 seconds', nonRetryableErrorTypes: ['NotFound', 'IllegalTransition'] },
});

/** Patch of the breach checks read from MongoDB, the saga and cancelling the readiness wait. */
export const BREACH_CHECKS_AND_SAGA = 'breach-checks-and-saga';
/** Patch of the replay gate, BLOCKED, blue-green and holding steps that saw too little traffic. */
export const REPLAY_GATE = 'replay-gate';

function failureMessage(err: unknown): string {
  let cause = err;
  while ((cause instanceof ActivityFailure || cause instanceof ChildWorkflowFailure) && cause.cause) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

const ENDED: DeploymentStage[] = ['ACTIVE', 'ROLLED_BACK', 'ABORTED', 'FAILED'];

/**
 * Rolls one version out (id `deploy/<service>/<version>`): its instances started and ready, then
 * canary weights stepped up, each step held and its health analysed, then promoted, the previous
 * version archived and stopped. A failed analysis or the gateway's breaker rolls back, up to the
 * moment of promotion; promote, pause, resume, abort and set-weight are Updates, refused with a
 * reason when they make no sense. Whatever fails on the way (an activity out of retries, a pool
 * that never gets ready) ends the deployment FAILED after its saga ran: weights back to the stable
 * version, the candidate's pool stopped, its state marked.
 */
export async function deploymentWorkflow(input: DeploymentInput): Promise<DeploymentState> {
  const { service, version } = input;
  const ids = { workflowId: workflowInfo().workflowId, runId: workflowInfo().runId };
  const state: DeploymentState = { service, version, mode: input.mode, stage: 'PREPARING', weight: 0, stepIndex: -1, steps: [], paused: false, failedChecks: 0 };
  // Runs recorded before these checks replay without them (test/histories).
  const v2 = patched(BREACH_CHECKS_AND_SAGA);
  const v3 = v2 && patched(REPLAY_GATE);
  let overrideReason: string | undefined;
  let breach: BreachNotice | undefined;
  // Set by signal handlers between awaits; a function keeps TypeScript from narrowing it away.
  const breached = (): BreachNotice | undefined => breach;
  let abortReason: string | undefined;
  let promoteNow = false;
  let manualWeight: number | undefined;
  /** The saga: what to undo, newest last, should the deployment fail. */
  const undo: (() => Promise<unknown>)[] = [];

  const event = (kind: string, status: 'info' | 'running' | 'ok' | 'failed', details: Record<string, unknown> = {}) =>
    recordEvent({ service, version, kind, status, details: { stage: state.stage, weight: state.weight, ...details }, ...ids });
  const setStage = (stage: DeploymentStage) => {
    state.stage = stage;
    upsertSearchAttributes([{ key: McpStage, value: stage }]);
  };
  const ended = () => ENDED.includes(state.stage);
  const refuseUnlessRollingOut = (what: string) => {
    if (ended()) throw ApplicationFailure.nonRetryable(`cannot ${what}: the deployment of ${service}@${version} has ended (${state.stage})`, 'IllegalControl');
    if (state.stage === 'ROLLING_BACK' || state.stage === 'PROMOTING') throw ApplicationFailure.nonRetryable(`cannot ${what}: the deployment is ${state.stage.toLowerCase().replace('_', ' ')}`, 'IllegalControl');
    if (state.stage === 'WARM') throw ApplicationFailure.nonRetryable(`cannot ${what}: ${version} is active; the previous version is only kept warm (roll back to it instead)`, 'IllegalControl');
  };

  setHandler(deploymentStateQuery, () => state);
  setHandler(breachSignal, (notice) => {
    breach ??= notice;
  });
  setHandler(supersedeSignal, ({ by }) => {
    abortReason ??= `superseded by ${by}`;
  });
  setHandler(promoteUpdate, () => ((promoteNow = true), state), {
    validator: () => {
      refuseUnlessRollingOut('promote');
      if (state.stage === 'BLOCKED') throw ApplicationFailure.nonRetryable('the replay gate blocked this version: override it with a reason first', 'IllegalControl');
    },
  });
  setHandler(overrideUpdate, (reason) => ((overrideReason = reason.trim()), state), {
    validator: (reason) => {
      if (state.stage !== 'BLOCKED') throw ApplicationFailure.nonRetryable(`override only applies to a deployment the replay gate blocked (stage is ${state.stage})`, 'IllegalControl');
      if (typeof reason !== 'string' || !reason.trim()) throw ApplicationFailure.nonRetryable('an override needs a reason', 'IllegalControl');
    },
  });
  setHandler(pauseUpdate, () => ((state.paused = true), state), {
    validator: () => {
      refuseUnlessRollingOut('pause');
      if (state.paused) throw ApplicationFailure.nonRetryable('already paused', 'IllegalControl');
    },
  });
  setHandler(resumeUpdate, () => ((state.paused = false), state), {
    validator: () => {
      refuseUnlessRollingOut('resume');
      if (!state.paused) throw ApplicationFailure.nonRetryable('not paused', 'IllegalControl');
    },
  });
  setHandler(abortUpdate, (reason: string | undefined) => ((abortReason ??= reason ?? 'aborted by request'), state), { validator: (_reason: string | undefined) => refuseUnlessRollingOut('abort') });
  setHandler(setWeightUpdate, (weight) => ((manualWeight = weight), state), {
    validator: (weight) => {
      refuseUnlessRollingOut('set the weight');
      if (!Number.isInteger(weight) || weight < 0 || weight > 100) throw ApplicationFailure.nonRetryable(`weight must be a whole number from 0 to 100, got ${weight}`, 'IllegalControl');
      if (state.stage !== 'CANARY') throw ApplicationFailure.nonRetryable(`set-weight only applies to a canary (stage is ${state.stage})`, 'IllegalControl');
    },
  });

  const interrupted = () => breach !== undefined || abortReason !== undefined;

  let previous: string | undefined;
  let restoreQueued = false;

  async function route(weight: number): Promise<void> {
    if (v2 && previous && !restoreQueued) {
      // Once, before the first weight: should anything fail from here on, stable gets everything back.
      restoreQueued = true;
      const stable = previous;
      undo.push(() => compensate.setWeights(service, stable, { [stable]: 100, [version]: 0 }, [version]));
    }
    state.weight = weight;
    if (!previous || weight >= 100) await acts.setWeights(service, version, { [version]: 100, ...(previous ? { [previous]: 0 } : {}) }, []);
    else await acts.setWeights(service, previous, { [previous]: 100 - weight, [version]: weight }, []);
  }

  /** Back to the previous version at once; the new one marked and stopped. */
  async function rollBack(to: 'ROLLED_BACK' | 'ABORTED', reason: string): Promise<DeploymentState> {
    setStage('ROLLING_BACK');
    state.reason = reason;
    if (previous) await acts.setWeights(service, previous, { [previous]: 100, [version]: 0 }, [version]);
    state.weight = 0;
    await acts.transitionVersion(service, version, to, reason);
    await acts.stopVersionPool(service, version);
    undo.length = 0;
    setStage(to);
    await event(to === 'ROLLED_BACK' ? 'ROLLBACK_COMPLETE' : 'DEPLOYMENT_ABORTED', 'failed', { reason, restored: previous ?? null });
    return state;
  }

  /**
   * The breaker's verdict: its signal, else (the signal may never have arrived) the pull that
   * every gateway's breaker writes to MongoDB.
   */
  async function breachNow(): Promise<BreachNotice | undefined> {
    breach ??= (await acts.checkBreach(service, version)) ?? undefined;
    return breach;
  }

  /** Holds a step for its interval, paused time not counted, or until something interrupts it. */
  async function hold(intervalMs: number): Promise<void> {
    let remaining = intervalMs;
    const stop = () => interrupted() || promoteNow || manualWeight !== undefined;
    while (remaining > 0 && !stop()) {
      if (state.paused) {
        await condition(() => !state.paused || interrupted() || promoteNow);
        continue;
      }
      const from = Date.now();
      await condition(() => stop() || state.paused, remaining);
      remaining -= Date.now() - from;
    }
  }

  /** Waits for the pool; a supersede or abort meanwhile cancels the wait. */
  async function awaitReady(instances: number): Promise<void> {
    if (!v2) {
      await waits.awaitInstancesReady(service, version, instances);
      return;
    }
    const scope = new CancellationScope();
    const ready = scope.run(() => waits.awaitInstancesReady(service, version, instances));
    await Promise.race([ready.then(() => undefined, () => undefined), condition(() => abortReason !== undefined)]);
    if (abortReason === undefined) {
      await ready;
      return;
    }
    scope.cancel();
    await ready.catch((err: unknown) => {
      if (!isCancellation(err)) throw err;
    });
  }

  /**
   * The replay gate: the active version's captured traffic replayed against the candidate (a child
   * workflow with instances of its own; no user request reaches the candidate meanwhile). A
   * supersede or abort cancels it; a replay that fails blocks, as an unknown verdict must not pass.
   */
  async function replayGate(stable: string): Promise<ReplayGateState | undefined> {
    const workflowId = replayWorkflowId(service, version);
    const scope = new CancellationScope();
    const run = scope.run(() =>
      executeChild(replayWorkflow, {
        workflowId,
        args: [{ service, candidate: version, selection: { baseline: stable }, trigger: 'gate' }],
        // Terminating the deployment runs none of its code; the replay, asked to cancel, ends its report itself.
        parentClosePolicy: 'REQUEST_CANCEL',
        typedSearchAttributes: [
          { key: McpService, value: service },
          { key: McpVersion, value: version },
        ],
      }),
    );
    await Promise.race([run.then(() => undefined, () => undefined), condition(() => abortReason !== undefined)]);
    if (abortReason !== undefined) {
      scope.cancel();
      await run.catch(() => undefined);
      return undefined;
    }
    try {
      const report = await run;
      const gate = report.gate ?? { decision: 'unproven' as const, reasons: ['the replay reported no decision'] };
      return { decision: gate.decision, reasons: gate.reasons, replayId: report.replayId, workflowId, counts: report.counts, ...(report.schema ? { schemaClass: report.schema.class } : {}) };
    } catch (err) {
      return { decision: 'blocked', reasons: [`the replay failed: ${failureMessage(err)}`], workflowId };
    }
  }

  /**
   * Runs the gate; a blocked version waits, with no user traffic, for an override or an abort.
   * Returns false when the deployment ended meanwhile (it rolled back itself).
   */
  async function passGate(stable: string): Promise<boolean> {
    setStage('REPLAY');
    await event('REPLAY_GATE', 'running', { baseline: stable, workflowId: replayWorkflowId(service, version) });
    const gate = await replayGate(stable);
    if (!gate) return false;
    state.replayGate = gate;
    if (gate.decision !== 'blocked') {
      await event('REPLAY_GATE', gate.decision === 'proven' ? 'ok' : 'info', { ...gate });
      return true;
    }
    await acts.transitionVersion(service, version, 'BLOCKED', gate.reasons.join('; '));
    setStage('BLOCKED');
    await event('REPLAY_BLOCKED', 'failed', { ...gate });
    await condition(() => overrideReason !== undefined || abortReason !== undefined);
    if (abortReason !== undefined) return false;
    gate.override = overrideReason;
    await event('REPLAY_OVERRIDDEN', 'info', { reason: overrideReason, replayId: gate.replayId ?? null });
    return true;
  }

  /** Blue-green: the previous version's instances keep running, for an instant rollback, unless superseded meanwhile. */
  async function keepWarm(stable: string, keepWarmSec: number): Promise<void> {
    setStage('WARM');
    await event('KEPT_WARM', 'info', { previous: stable, keepWarmSec });
    await condition(() => abortReason !== undefined, keepWarmSec * 1000);
    // A rollback to `stable` (a deployment of it, which superseded this one) owns its pool now.
    if (abortReason !== `superseded by ${deploymentWorkflowId(service, stable)}`) await acts.stopVersionPool(service, stable);
    setStage('ACTIVE');
  }

  async function rollOut(): Promise<DeploymentState> {
    setStage('PREPARING');
    await acts.supersedeOtherDeployments(service, ids.workflowId);
    const prepared = await acts.prepareDeployment(service, version);
    const { settings } = prepared;
    previous = prepared.previous;
    if (previous) state.previous = previous;
    const fast = input.mode === 'rollback' && settings.fastRollback;
    const blueGreen = v3 && settings.strategy === 'blueGreen';
    if (v3) state.strategy = settings.strategy;
    state.steps = fast || !previous || blueGreen ? [100] : settings.steps;
    await event('DEPLOYMENT_STARTED', 'running', { mode: input.mode, previous: previous ?? null, steps: state.steps, reason: input.reason ?? null });

    setStage('STARTING');
    await acts.startVersionPool(service, version, prepared.dir, settings.instances);
    if (v2) undo.push(() => compensate.stopVersionPool(service, version));
    await awaitReady(settings.instances);
    if (abortReason) return rollBack('ABORTED', abortReason);
    // A rollback returns to a version that served before; it is not held up by a replay.
    if (v3 && previous && input.mode !== 'rollback' && settings.replayGate.enabled) {
      if (!(await passGate(previous))) return rollBack('ABORTED', abortReason ?? 'aborted');
    }
    // With nothing active there is nothing to compare against: the version goes straight to 100%.
    if (previous) {
      await acts.transitionVersion(service, version, 'CANARY', input.reason);
      if (v2) undo.push(() => compensate.transitionVersion(service, version, 'ABORTED', 'the deployment failed'));
    }

    setStage('CANARY');
    // A step held for too little traffic keeps its weight and its start: the next analysis sees the whole span.
    let holding = false;
    let stepStartedMs = 0;
    for (let i = 0; i < state.steps.length; i++) {
      state.stepIndex = i;
      const weight = manualWeight ?? state.steps[i]!;
      manualWeight = undefined;
      if (weight >= 100 || promoteNow) break;
      if (!holding) {
        await route(weight);
        stepStartedMs = Date.now();
        state.inconclusiveHolds = 0;
        await event('CANARY_STEP', 'running', { step: i + 1, of: state.steps.length, weight, holdSec: settings.intervalSec });
      }
      holding = false;
      await hold(settings.intervalSec * 1000);
      if (breach) return rollBack('ROLLED_BACK', `circuit breaker: ${breach.reasons.join('; ')}`);
      if (abortReason) return rollBack('ABORTED', abortReason);
      if (manualWeight !== undefined) {
        i--;
        continue;
      }
      if (promoteNow) break;
      const pulled = v2 ? await breachNow() : undefined;
      if (pulled) return rollBack('ROLLED_BACK', `circuit breaker: ${pulled.reasons.join('; ')}`);
      const analysis = await acts.analyseVersion(service, version, stepStartedMs, settings.analysis);
      state.lastAnalysis = analysis;
      // Without requireTraffic a step with too few work requests is not judged: neither a pass nor a failed check.
      const unjudged = v2 && analysis.inconclusive && !settings.analysis.requireTraffic;
      await event('ANALYSIS', analysis.healthy ? 'ok' : unjudged ? 'info' : 'failed', { ...analysis });
      if (!analysis.healthy && !unjudged && ++state.failedChecks > settings.analysis.maxFailedChecks) {
        return rollBack('ROLLED_BACK', `analysis failed: ${analysis.reasons.join('; ')}`);
      }
      // Too little traffic is not a pass (Argo's inconclusive rule), unless the replay gate proved the version.
      if (v3 && unjudged && settings.analysis.onInconclusive === 'hold' && state.replayGate?.decision !== 'proven') {
        if ((state.inconclusiveHolds ?? 0) < settings.analysis.maxInconclusiveHolds) {
          state.inconclusiveHolds = (state.inconclusiveHolds ?? 0) + 1;
          await event('STEP_HELD', 'info', { step: i + 1, hold: state.inconclusiveHolds, of: settings.analysis.maxInconclusiveHolds, requests: analysis.requests, reason: analysis.reasons.join('; ') });
          holding = true;
          i--;
          continue;
        }
        state.paused = true;
        await event('PAUSED', 'info', { step: i + 1, reason: `too little traffic to judge after ${state.inconclusiveHolds} holds: waiting for a person (resume, promote or abort)` });
        await condition(() => !state.paused || interrupted() || promoteNow);
        const broke = breached();
        if (broke) return rollBack('ROLLED_BACK', `circuit breaker: ${broke.reasons.join('; ')}`);
        if (abortReason) return rollBack('ABORTED', abortReason);
      }
      const late = breached();
      if (late) return rollBack('ROLLED_BACK', `circuit breaker: ${late.reasons.join('; ')}`);
    }

    setStage('PROMOTING');
    // A breach after the last analysis still rolls back: before the weight change, and after it
    // (the breaker judged the canary's traffic up to then). Once ACTIVE, the version is the stable one.
    const before = v2 && previous ? await breachNow() : undefined;
    if (before) return rollBack('ROLLED_BACK', `circuit breaker: ${before.reasons.join('; ')}`);
    await route(100);
    const after = v2 && previous ? await breachNow() : undefined;
    if (after) return rollBack('ROLLED_BACK', `circuit breaker: ${after.reasons.join('; ')}`);
    await acts.transitionVersion(service, version, 'ACTIVE', promoteNow ? 'promoted by request' : input.reason);
    undo.length = 0;
    if (previous) {
      await acts.archiveVersion(service, previous, `replaced by ${version}`);
      if (!blueGreen) await acts.stopVersionPool(service, previous);
    }
    setStage('ACTIVE');
    await event('PROMOTED', 'ok', { previous: previous ?? null, ...(v3 ? { strategy: settings.strategy } : {}) });
    if (blueGreen && previous) await keepWarm(previous, settings.blueGreen.keepWarmSec);
    return state;
  }

  try {
    return await rollOut();
  } catch (err) {
    if (!v2) throw err;
    // The saga, run to the end even when the workflow is being cancelled.
    const reason = `deployment failed: ${failureMessage(err)}`;
    await CancellationScope.nonCancellable(async () => {
      // One undo that cannot be done (its own non-retryable error) must not stop the others.
      const undoFailed: string[] = [];
      for (const step of undo.reverse()) await step().catch((undoErr: unknown) => undoFailed.push(failureMessage(undoErr)));
      undo.length = 0;
      state.weight = 0;
      state.reason = reason;
      setStage('FAILED');
      await event('DEPLOYMENT_FAILED', 'failed', { reason, restored: previous ?? null, ...(undoFailed.length ? { undoFailed } : {}) });
    });
    if (isCancellation(err)) throw err;
    return state;
  }
}
