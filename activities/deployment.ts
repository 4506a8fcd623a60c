import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { AnalysisResult, BreachNotice, PreparedDeployment } from '../core/deployment.ts';
import type { EventStore } from '../core/events.ts';
import { analyseStep, resolveThresholds } from '../core/health.ts';
import { loadManifest, type RolloutSettings } from '../core/manifest.ts';
import type { Store } from '../core/mongo.ts';
import { readRouting, setRouting, updateRouting } from '../core/routing-store.ts';
import { McpService } from '../core/search-attributes.ts';
import { readCounts } from '../api/gateway/metrics.ts';
import { readyInstances, setPool, stopPool } from '../runner/desired-state.ts';

const POLL_MS = 250;
/** Readiness timeouts (config runner.readyTimeoutMs) a pool gets, restarts included, before the deployment gives up. */
const READY_TIMEOUTS = 4;

export function deploymentActivities(deps: { config: Config; store: Store; events: EventStore; temporal?: Client }) {
  const { store, events } = deps;

  return {
    /** Where the version's files are, its rollout settings, and what is active now. */
    async prepareDeployment(service: string, version: string): Promise<PreparedDeployment> {
      const doc = await store.versions.findOne({ service, version });
      if (!doc) throw ApplicationFailure.nonRetryable(`no version ${version} of service ${service}`, 'NotFound');
      const dir = doc.state === 'ARCHIVED' ? doc.archiveDir : (doc.stagedDir ?? doc.archiveDir);
      if (!dir) throw ApplicationFailure.nonRetryable(`${service}@${version} has no files to run`, 'NotFound');
      const settings = (await loadManifest(dir)).rollout;
      resolveThresholds(settings.breaker);
      // Through the compare-and-set path like every routing write: FerretDB's updates rewrite the
      // whole document, so a plain $set here could undo a concurrent weight change. A deployment
      // of a version that was pulled (rolled back before) is the one thing that un-pulls it.
      const routing = await updateRouting(store, service, () => ({
        breaker: settings.breaker as Record<string, number>,
        stepIntervalMs: Math.round(settings.intervalSec * 1000),
        unpull: [version],
      }));
      return { dir, settings, ...(routing.stable && routing.stable !== version ? { previous: routing.stable } : {}) };
    },

    /**
     * One deployment per service: any other running deployment of the service is told it is
     * superseded (it aborts and restores its stable routing), and this waits until they have ended.
     */
    async supersedeOtherDeployments(service: string, selfId: string): Promise<string[]> {
      if (!deps.temporal) return [];
      const others: string[] = [];
      const query = `${McpService.name} = '${service}' AND WorkflowType = 'deploymentWorkflow' AND ExecutionStatus = 'Running'`;
      for await (const wf of deps.temporal.workflow.list({ query })) if (wf.workflowId !== selfId) others.push(wf.workflowId);
      for (const id of others) {
        await deps.temporal.workflow.getHandle(id).signal('supersede', { by: selfId }).catch(() => {});
      }
      for (const id of others) {
        for (;;) {
          const { status } = await deps.temporal.workflow.getHandle(id).describe();
          if (status.name !== 'RUNNING') break;
          Context.current().heartbeat({ waitingFor: id });
          // Context.sleep ends early with a CancelledFailure when the activity is cancelled.
          await Context.current().sleep(POLL_MS);
        }
      }
      return others;
    },

    async startVersionPool(service: string, version: string, dir: string, instances: number): Promise<void> {
      await setPool(store, { service, version, dir, instances });
    },

    /**
     * Waits, heartbeating, until the version has `instances` ready instances. A pool that is not
     * ready within READY_TIMEOUTS of the runner's readiness timeout never will be (the runner keeps
     * restarting what fails): that is a non-retryable failure, and the deployment ends FAILED.
     */
    async awaitInstancesReady(service: string, version: string, instances: number): Promise<number> {
      const deadline = Date.now() + READY_TIMEOUTS * deps.config.runner.readyTimeoutMs;
      for (;;) {
        const ready = await readyInstances(store, service, version);
        if (ready.length >= instances) return ready.length;
        const failed = await store.instances.find({ service, version, state: 'failed' }, { projection: { lastError: 1 } }).toArray();
        if (Date.now() > deadline) {
          const why = failed.find((f) => f.lastError)?.lastError;
          throw ApplicationFailure.nonRetryable(
            `${service}@${version}: ${ready.length} of ${instances} instances ready after ${Math.round((READY_TIMEOUTS * deps.config.runner.readyTimeoutMs) / 1000)} s (${failed.length} failed${why ? `: ${why}` : ''})`,
            'InstancesNotReady',
          );
        }
        Context.current().heartbeat({ ready: ready.length, failed: failed.length });
        await Context.current().sleep(POLL_MS);
      }
    },

    async stopVersionPool(service: string, version: string): Promise<void> {
      await stopPool(store, service, version);
    },

    /**
     * Sets the weights of new sessions and records which versions are active and canary. Versions
     * in `pull` are pulled; a pulled version (by the breaker, or an earlier rollback) stays pulled
     * whatever its weight, unless named in `unpull`: a deployment un-pulls its own version once, at its start.
     */
    async setWeights(service: string, stable: string, weights: Record<string, number>, pull: string[] = [], unpull: string[] = []): Promise<void> {
      await setRouting(store, service, { stable, weights, pull, unpull });
      const canary = Object.entries(weights).find(([v, w]) => v !== stable && w > 0)?.[0];
      await store.services.updateOne(
        { name: service },
        canary
          ? { $set: { activeVersion: stable, canaryVersion: canary, updatedAt: new Date() } }
          : { $set: { activeVersion: stable, updatedAt: new Date() }, $unset: { canaryVersion: '' } },
        { upsert: true },
      );
      await events.append({ service, version: canary ?? stable, kind: 'WEIGHTS_SET', status: 'info', details: { stable, weights: Object.entries(weights).map(([version, weight]) => ({ version, weight })), pulled: pull } });
    },

    /**
     * The breaker's verdict as MongoDB holds it: the version pulled from routing (by any gateway's
     * breaker), with the reasons of its last BREAKER_OPEN. The workflow asks at each step, so a
     * breach signal that never arrived still ends the canary.
     */
    async checkBreach(service: string, version: string): Promise<BreachNotice | null> {
      const routing = await readRouting(store, service);
      if (!routing.pulled.includes(version)) return null;
      const [open] = await store.events.find({ service, version, kind: 'BREAKER_OPEN' }).sort({ seq: -1 }).limit(1).toArray();
      const reasons = (open?.details as { reasons?: string[] } | undefined)?.reasons;
      return { reasons: reasons?.length ? reasons : [`${version} was pulled from routing`], at: (open?.time ?? new Date()).toISOString() };
    },

    /**
     * Judges a version's work requests since a step began, from the gateway's metrics in MongoDB,
     * against the stable version's over the same span (core/health.ts analyseStep).
     */
    async analyseVersion(service: string, version: string, sinceMs: number, analysis: RolloutSettings['analysis']): Promise<AnalysisResult> {
      const until = Date.now();
      const { stable } = await readRouting(store, service);
      const [counts, baseline] = await Promise.all([
        readCounts(store, service, version, sinceMs, until),
        stable && stable !== version ? readCounts(store, service, stable, sinceMs, until) : undefined,
      ]);
      const verdict = analyseStep(counts, baseline, analysis);
      return {
        healthy: verdict.healthy,
        inconclusive: verdict.inconclusive,
        reasons: verdict.reasons,
        requests: verdict.stats.requests,
        successRate: verdict.stats.successRate,
        p99Ms: verdict.stats.p99Ms,
        at: new Date(until).toISOString(),
      };
    },
  };
}
