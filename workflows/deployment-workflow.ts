import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { BreachNotice, DeploymentInput, DeploymentStage, DeploymentState } from '../core/deployment.ts';
import type { RolloutSettings } from '../core/manifest.ts';
import { McpStage } from '../core/search-attributes.ts';

export const breachSignal = defineSignal<[BreachNotice]>('breach');
export const supersedeSignal = defineSignal<[{ by: string }]>('supersede');
export const deploymentStateQuery = defineQuery<DeploymentState>('state');
export const promoteUpdate = defineUpdate<DeploymentState>('promote');
export const pauseUpdate = defineUpdate<DeploymentState>('pause');
export const resumeUpdate = defineUpdate<DeploymentState>('resume');
export const abortUpdate = defineUpdate<DeploymentState, [string | undefined]>('abort');
export const setWeightUpdate = defineUpdate<DeploymentState, [number]>('setWeight');

const { recordEvent } = proxyLocalActivities<Activities>({ startToCloseTimeout: '10 seconds' });
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['NotFound', 'IllegalTransition'] },
});
const waits = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

const ENDED: DeploymentStage[] = ['ACTIVE', 'ROLLED_BACK', 'ABORTED', 'FAILED'];

/**
 * Rolls one version out (id `deploy/<service>/<version>`): its instances started and ready, then
 * canary weights stepped up, each step held and its health analysed, then promoted, the previous
 * version archived and stopped. A failed analysis or the gateway's breaker rolls back; promote,
 * pause, resume, abort and set-weight are Updates, refused with a reason when they make no sense.
 */
export async function deploymentWorkflow(input: DeploymentInput): Promise<DeploymentState> {
  const { service, version } = input;
  const ids = { workflowId: workflowInfo().workflowId, runId: workflowInfo().runId };
  const state: DeploymentState = { service, version, mode: input.mode, stage: 'PREPARING', weight: 0, stepIndex: -1, steps: [], paused: false, failedChecks: 0 };
  let breach: BreachNotice | undefined;
  // Set by signal handlers between awaits; a function keeps TypeScript from narrowing it away.
  const breached = (): BreachNotice | undefined => breach;
  let abortReason: string | undefined;
  let promoteNow = false;
  let manualWeight: number | undefined;

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
  };

  setHandler(deploymentStateQuery, () => state);
  setHandler(breachSignal, (notice) => {
    breach ??= notice;
  });
  setHandler(supersedeSignal, ({ by }) => {
    abortReason ??= `superseded by ${by}`;
  });
  setHandler(promoteUpdate, () => ((promoteNow = true), state), { validator: () => refuseUnlessRollingOut('promote') });
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

  async function route(weight: number, previous: string | undefined): Promise<void> {
    state.weight = weight;
    if (!previous || weight >= 100) await acts.setWeights(service, version, { [version]: 100, ...(previous ? { [previous]: 0 } : {}) }, []);
    else await acts.setWeights(service, previous, { [previous]: 100 - weight, [version]: weight }, []);
  }

  /** Back to the previous version at once; the new one marked and stopped. */
  async function rollBack(to: 'ROLLED_BACK' | 'ABORTED', reason: string, previous: string | undefined): Promise<DeploymentState> {
    setStage('ROLLING_BACK');
    state.reason = reason;
    if (previous) await acts.setWeights(service, previous, { [previous]: 100, [version]: 0 }, [version]);
    state.weight = 0;
    await acts.transitionVersion(service, version, to, reason);
    await acts.stopVersionPool(service, version);
    setStage(to);
    await event(to === 'ROLLED_BACK' ? 'ROLLBACK_COMPLETE' : 'DEPLOYMENT_ABORTED', 'failed', { reason, restored: previous ?? null });
    return state;
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

  setStage('PREPARING');
  await acts.supersedeOtherDeployments(service, ids.workflowId);
  const prepared = await acts.prepareDeployment(service, version);
  const { settings, previous } = prepared;
  if (previous) state.previous = previous;
  const fast = input.mode === 'rollback' && settings.fastRollback;
  state.steps = fast || !previous ? [100] : settings.steps;
  await event('DEPLOYMENT_STARTED', 'running', { mode: input.mode, previous: previous ?? null, steps: state.steps, reason: input.reason ?? null });

  setStage('STARTING');
  await acts.startVersionPool(service, version, prepared.dir, settings.instances);
  await waits.awaitInstancesReady(service, version, settings.instances);
  if (abortReason) return rollBack('ABORTED', abortReason, previous);
  // With nothing active there is nothing to compare against: the version goes straight to 100%.
  if (previous) await acts.transitionVersion(service, version, 'CANARY', input.reason);

  setStage('CANARY');
  for (let i = 0; i < state.steps.length; i++) {
    state.stepIndex = i;
    const weight = manualWeight ?? state.steps[i]!;
    manualWeight = undefined;
    if (weight >= 100 || promoteNow) break;
    await route(weight, previous);
    const stepStartedMs = Date.now();
    await event('CANARY_STEP', 'running', { step: i + 1, of: state.steps.length, weight, holdSec: settings.intervalSec });
    await hold(settings.intervalSec * 1000);
    if (breach) return rollBack('ROLLED_BACK', `circuit breaker: ${breach.reasons.join('; ')}`, previous);
    if (abortReason) return rollBack('ABORTED', abortReason, previous);
    if (manualWeight !== undefined) {
      i--;
      continue;
    }
    if (promoteNow) break;
    const analysis = await acts.analyseVersion(service, version, stepStartedMs, settings.analysis);
    state.lastAnalysis = analysis;
    await event('ANALYSIS', analysis.healthy ? 'ok' : 'failed', { ...analysis });
    if (!analysis.healthy && ++state.failedChecks > settings.analysis.maxFailedChecks) {
      return rollBack('ROLLED_BACK', `analysis failed: ${analysis.reasons.join('; ')}`, previous);
    }
    const late = breached();
    if (late) return rollBack('ROLLED_BACK', `circuit breaker: ${late.reasons.join('; ')}`, previous);
  }

  setStage('PROMOTING');
  await route(100, previous);
  await acts.transitionVersion(service, version, 'ACTIVE', promoteNow ? 'promoted by request' : input.reason);
  if (previous) {
    await acts.archiveVersion(service, previous, `replaced by ${version}`);
    await acts.stopVersionPool(service, previous);
  }
  setStage('ACTIVE');
  await event('PROMOTED', 'ok', { previous: previous ?? null });
  return state;
}
