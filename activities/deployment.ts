import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { AnalysisResult, PreparedDeployment } from '../core/deployment.ts';
import type { EventStore } from '../core/events.ts';
import { resolveThresholds } from '../core/health.ts';
import { loadManifest, type RolloutSettings } from '../core/manifest.ts';
import type { Store } from '../core/mongo.ts';
import { readRouting, setRouting } from '../core/routing-store.ts';
import { McpService } from '../core/search-attributes.ts';
import { readHealth } from '../api/gateway/metrics.ts';
import { readyInstances, setPool, stopPool } from '../runner/desired-state.ts';

const POLL_MS = 250;

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
      const routing = await readRouting(store, service);
      await store.routing.updateOne({ service }, { $set: { breaker: settings.breaker as Record<string, number> }, $setOnInsert: { service, weights: {}, pulled: [], updatedAt: new Date() } }, { upsert: true });
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

    /** Waits, heartbeating, until the version has `instances` ready instances. */
    async awaitInstancesReady(service: string, version: string, instances: number): Promise<number> {
      for (;;) {
        const ready = await readyInstances(store, service, version);
        if (ready.length >= instances) return ready.length;
        const failed = await store.instances.countDocuments({ service, version, state: 'failed' });
        Context.current().heartbeat({ ready: ready.length, failed });
        await Context.current().sleep(POLL_MS);
      }
    },

    async stopVersionPool(service: string, version: string): Promise<void> {
      await stopPool(store, service, version);
    },

    /** Sets the weights of new sessions (and pulls versions) and records which versions are active and canary. */
    async setWeights(service: string, stable: string, weights: Record<string, number>, pull: string[] = []): Promise<void> {
      await setRouting(store, service, { stable, weights, pull });
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

    /** Judges a version's health since a step began, from the gateway's metrics in MongoDB. */
    async analyseVersion(service: string, version: string, sinceMs: number, analysis: RolloutSettings['analysis']): Promise<AnalysisResult> {
      const health = await readHealth(store, service, version, sinceMs);
      const inconclusive = health.requests < analysis.minRequests;
      const breaches: string[] = [];
      if (health.successRate !== null && health.successRate < analysis.minSuccessRate) {
        breaches.push(`success rate ${(health.successRate * 100).toFixed(1)}% < ${(analysis.minSuccessRate * 100).toFixed(1)}% (${health.failures}/${health.requests} failed)`);
      }
      if (health.p99Ms !== null && health.p99Ms > analysis.maxP99Ms) breaches.push(`p99 latency ${Math.round(health.p99Ms)} ms > ${analysis.maxP99Ms} ms`);
      const reasons = inconclusive ? [`${health.requests} requests, fewer than the ${analysis.minRequests} needed to judge`, ...breaches] : breaches;
      return {
        healthy: inconclusive ? !analysis.requireTraffic && breaches.length === 0 : breaches.length === 0,
        inconclusive,
        reasons,
        requests: health.requests,
        successRate: health.successRate,
        p99Ms: health.p99Ms,
        at: new Date().toISOString(),
      };
    },
  };
}
