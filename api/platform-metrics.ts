/**
 * Prometheus metrics of the platform around the gateway: what the event stream says happened
 * (validation steps, finished deployments, replays: counters since this API process started),
 * what MongoDB and Temporal say is true now (sessions per version, deployments per stage, read at
 * scrape time), and Node's own process metrics.
 */
import type { Client } from '@temporalio/client';
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EventDoc } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import type { Store } from '../core/mongo.ts';
import { McpStage } from '../core/search-attributes.ts';

const STEPS = ['install', 'lint', 'test', 'build'];
const STEP_BUCKETS_S = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
/** Deployment end events and the outcome label they count under. */
const DEPLOYMENT_ENDS: Record<string, string> = { PROMOTED: 'promoted', ROLLBACK_COMPLETE: 'rolled_back', DEPLOYMENT_ABORTED: 'aborted', DEPLOYMENT_FAILED: 'failed' };
const REPLAY_CLASSES = ['equal', 'noise', 'differs', 'breaks', 'skipped'] as const;
/** A session not seen for this long no longer counts as open. */
const SESSION_IDLE_MS = 30 * 60_000;
/** Scrapes must not hang on an unreachable Temporal: its gauge is left out of that scrape instead. */
const TEMPORAL_SCRAPE_MS = 2_000;

export interface PlatformMetricsDeps {
  registry: Registry;
  store: Store;
  events: EventStore;
  temporal?: Client;
}

export interface PlatformMetrics {
  stop(): void;
}

export async function startPlatformMetrics(deps: PlatformMetricsDeps): Promise<PlatformMetrics> {
  const registers = [deps.registry];
  collectDefaultMetrics({ register: deps.registry });

  const steps = new Histogram({
    name: 'mcpship_validation_step_duration_seconds',
    help: 'Duration of validation steps (install, lint, test, build) by service, step and outcome (ok, failed)',
    labelNames: ['service', 'step', 'outcome'],
    buckets: STEP_BUCKETS_S,
    registers,
  });
  const deployments = new Counter({
    name: 'mcpship_deployments_finished_total',
    help: 'Deployments that ended, by service and outcome (promoted, rolled_back, aborted, failed)',
    labelNames: ['service', 'outcome'],
    registers,
  });
  const replays = new Counter({
    name: 'mcpship_replays_total',
    help: 'Differential replays that ended, by service, status (DONE, FAILED, CANCELLED) and gate decision (proven, passed, blocked, none)',
    labelNames: ['service', 'status', 'decision'],
    registers,
  });
  const replayed = new Counter({
    name: 'mcpship_replay_requests_total',
    help: 'Requests compared by finished replays, by service and class (equal, noise, differs, breaks, skipped)',
    labelNames: ['service', 'class'],
    registers,
  });
  const { store, temporal } = deps;
  new Gauge({
    name: 'mcpship_sessions_open',
    help: 'MCP sessions open per version (not closed, seen in the last 30 minutes), over all gateways',
    labelNames: ['service', 'version'],
    registers,
    async collect() {
      this.reset();
      const rows = await store.sessions
        .aggregate<{ _id: { service: string; version: string }; n: number }>([
          { $match: { closedAt: { $exists: false }, lastSeenAt: { $gte: new Date(Date.now() - SESSION_IDLE_MS) } } },
          { $group: { _id: { service: '$service', version: '$version' }, n: { $sum: 1 } } },
        ])
        .toArray();
      for (const r of rows) this.set({ service: r._id.service, version: r._id.version }, r.n);
    },
  });
  if (temporal) {
    new Gauge({
      name: 'mcpship_deployments_running',
      help: 'Running deployment workflows by service and stage (Temporal search attribute McpStage)',
      labelNames: ['service', 'stage'],
      registers,
      async collect() {
        this.reset();
        const counts = new Map<string, { service: string; stage: string; n: number }>();
        const list = async () => {
          for await (const wf of temporal.workflow.list({ query: `WorkflowType = 'deploymentWorkflow' AND ExecutionStatus = 'Running'` })) {
            const stage = wf.typedSearchAttributes.get(McpStage) ?? 'UNKNOWN';
            const service = wf.workflowId.split('/')[1] ?? 'unknown';
            const key = `${service}\u0000${stage}`;
            counts.set(key, { service, stage, n: (counts.get(key)?.n ?? 0) + 1 });
          }
        };
        let timer: NodeJS.Timeout | undefined;
        const ok = await Promise.race([list().then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), TEMPORAL_SCRAPE_MS)))]).catch(() => false);
        clearTimeout(timer);
        if (ok) for (const c of counts.values()) this.set({ service: c.service, stage: c.stage }, c.n);
      },
    });
  }

  const onEvent = (e: EventDoc) => {
    const d = (e.details ?? {}) as Record<string, unknown>;
    const step = /^([A-Z]+)_(COMPLETE|FAILED)$/.exec(e.kind);
    if (step && STEPS.includes(step[1]!.toLowerCase()) && e.durationMs !== undefined) {
      steps.observe({ service: e.service, step: step[1]!.toLowerCase(), outcome: step[2] === 'COMPLETE' ? 'ok' : 'failed' }, e.durationMs / 1000);
    } else if (DEPLOYMENT_ENDS[e.kind]) {
      deployments.inc({ service: e.service, outcome: DEPLOYMENT_ENDS[e.kind]! });
    } else if (e.kind === 'REPLAY_FINISHED') {
      replays.inc({ service: e.service, status: String(d.status ?? 'unknown'), decision: String(d.decision ?? 'none') });
      const counts = (d.counts ?? {}) as Record<string, unknown>;
      for (const cls of REPLAY_CLASSES) if (typeof counts[cls] === 'number') replayed.inc({ service: e.service, class: cls }, counts[cls]);
    }
  };
  const stopFollowing = deps.events.follow({}, await deps.events.lastSeq(), onEvent, 1_000);
  return { stop: stopFollowing };
}
