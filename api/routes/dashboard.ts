/**
 * Aggregates for the dashboard (dashboard/): what the overview and a service page show, each read
 * in one request so the page does not fan out into dozens of queries every refresh.
 */
import { Router } from 'express';
import type { Config } from '../../core/config.ts';
import type { AnalysisResult, DeploymentStage } from '../../core/deployment.ts';
import type { EventDoc, MetricBucketDoc } from '../../core/documents.ts';
import { emptyCounts, LATENCY_BOUNDS_MS, mergeCounts, mergeHistograms, emptyHistogram, summarize } from '../../core/health.ts';
import type { Store } from '../../core/mongo.ts';
import { temporalUiLink } from '../../core/workflow-ids.ts';
import { HttpError } from '../errors.ts';
import { intParam, serviceParam } from '../params.ts';

/** Events that end a validation started by a VALIDATING event. */
const VALIDATION_ENDS = ['STAGED', 'ALREADY_STAGED', 'VALIDATION_FAILED', 'VALIDATION_CANCELLED'];
const STEP_FAILURES = ['INSTALL_FAILED', 'LINT_FAILED', 'TEST_FAILED', 'BUILD_FAILED'];
/** Events read back to list a service's runs (deployments, validations, replays). */
const RUN_EVENTS = 500;
const MAX_HISTORY_MINUTES = 24 * 60;

export interface WatchStatus {
  name: string;
  state: 'PRESENT' | 'REMOVED';
  activeVersion?: string;
  canaryVersion?: string;
  lastSave?: { at: Date; hash?: string };
  validating: boolean;
  /** The save under way was refused by a full state disk and is tried again after a pause (VALIDATION_WAITING). */
  waitingForSpace?: { at: Date; reason?: string };
  lastValidation?: { ok: boolean; at: Date; reason?: string; version?: string };
  lastFailure?: { at: Date; reason?: string; step?: string; outputTail?: string; logFile?: string };
}

export interface TransformTotals {
  transformId: string;
  forwardApplied: number;
  forwardFailed: number;
  backwardApplied: number;
  backwardFailed: number;
}

export interface HealthPoint {
  /** Bucket start, epoch ms. */
  t: number;
  requests: number;
  successRate: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** Requests per second over the bucket. */
  rate: number;
}

export interface RunLink {
  workflowId: string;
  runId?: string;
  version?: string;
  firstKind: string;
  lastKind: string;
  lastStatus: EventDoc['status'];
  startedAt: Date;
  lastAt: Date;
  temporalUi?: string;
}

/** GET /api/overview. */
export interface Overview {
  at: Date;
  watch: { services: number; validating: number; failed: number };
  deployments: { active: number; canary: number; failed: number };
  transforms: TransformTotals[];
  services: WatchStatus[];
}

/**
 * An ANALYSIS event of the deployment workflow: the step's analysis, with the stage and weight it
 * ran at. Partial: events written by older versions of the workflow lack some of it.
 */
export type AnalysisEvent = EventDoc & { details: Partial<AnalysisResult & { stage: DeploymentStage; weight: number }> };

/** GET /api/services/<name>/dashboard: what a service page shows, over the last `minutes`. */
export interface ServiceBoard {
  service: string;
  since: Date;
  until: Date;
  latencyBoundsMs: readonly number[];
  series: Record<string, HealthPoint[]>;
  histogram: Record<string, number[]>;
  /** Per version: open sessions, and the names of clients seen in captured traffic. */
  clients: Record<string, { sessions: number; clients: string[] }>;
  transforms: TransformTotals[];
  runs: RunLink[];
  analyses: AnalysisEvent[];
}

async function latest(store: Store, service: string, kinds: string[], extra: Record<string, unknown> = {}): Promise<EventDoc | null> {
  return store.events.findOne({ service, kind: { $in: kinds }, ...extra }, { sort: { seq: -1 }, projection: { _id: 0 } });
}

type Seq = Pick<EventDoc, 'seq'> | null;

/**
 * Whether a save is being validated now (its VALIDATING not yet ended), and whether it waits for
 * space: a save's tries after its VALIDATION_WAITING record no new VALIDATING, so the wait holds
 * until something ends the save or a newer save starts.
 */
export function validationNow(save: Seq, end: Seq, waiting: Seq): { validating: boolean; waitingForSpace: boolean } {
  const validating = save !== null && (end === null || end.seq < save.seq);
  return { validating, waitingForSpace: validating && waiting !== null && waiting.seq > save.seq && (end === null || end.seq < waiting.seq) };
}

async function watchStatus(store: Store, service: { name: string; state: 'PRESENT' | 'REMOVED'; activeVersion?: string; canaryVersion?: string; lastValidation?: WatchStatus['lastValidation'] }): Promise<WatchStatus> {
  const [save, end, failed, waiting] = await Promise.all([
    latest(store, service.name, ['VALIDATING']),
    latest(store, service.name, VALIDATION_ENDS),
    latest(store, service.name, ['VALIDATION_FAILED']),
    latest(store, service.name, ['VALIDATION_WAITING']),
  ]);
  const { validating, waitingForSpace } = validationNow(save, end, waiting);
  const failedDetails = failed?.details as { hash?: string; reason?: string; step?: string } | undefined;
  // The failed step's event holds the end of its output; the VALIDATION_FAILED event only the reason.
  const step = failed && failedDetails?.hash ? await latest(store, service.name, STEP_FAILURES, { 'details.hash': failedDetails.hash, seq: { $lt: failed.seq } }) : null;
  const stepDetails = step?.details as { outputTail?: string; logFile?: string } | undefined;
  return {
    name: service.name,
    state: service.state,
    ...(service.activeVersion ? { activeVersion: service.activeVersion } : {}),
    ...(service.canaryVersion ? { canaryVersion: service.canaryVersion } : {}),
    ...(save ? { lastSave: { at: save.time, hash: (save.details as { hash?: string } | undefined)?.hash } } : {}),
    validating,
    ...(waitingForSpace && waiting ? { waitingForSpace: { at: waiting.time, reason: (waiting.details as { reason?: string } | undefined)?.reason } } : {}),
    ...(service.lastValidation ? { lastValidation: { ok: service.lastValidation.ok, at: service.lastValidation.at, reason: service.lastValidation.reason, version: service.lastValidation.version } } : {}),
    ...(failed
      ? { lastFailure: { at: failed.time, reason: failedDetails?.reason, step: failedDetails?.step, outputTail: stepDetails?.outputTail, logFile: stepDetails?.logFile } }
      : {}),
  };
}

/** Counters of each transform summed over gateways (each gateway writes its own document). */
async function transformTotals(store: Store, service?: string): Promise<TransformTotals[]> {
  const docs = await store.transformMetrics.find(service ? { service } : {}, { projection: { _id: 0 } }).toArray();
  const byId = new Map<string, TransformTotals>();
  for (const d of docs) {
    const key = service ? d.transformId : `${d.service}:${d.transformId}`;
    const t = byId.get(key) ?? { transformId: key, forwardApplied: 0, forwardFailed: 0, backwardApplied: 0, backwardFailed: 0 };
    t.forwardApplied += d.forwardApplied;
    t.forwardFailed += d.forwardFailed;
    t.backwardApplied += d.backwardApplied;
    t.backwardFailed += d.backwardFailed;
    byId.set(key, t);
  }
  return [...byId.values()].sort((a, b) => a.transformId.localeCompare(b.transformId));
}

/** Health buckets of a service summed over gateways: a time series and a latency histogram per version. */
export function healthHistory(docs: readonly MetricBucketDoc[]): { series: Record<string, HealthPoint[]>; histogram: Record<string, number[]> } {
  const byVersion = new Map<string, Map<number, MetricBucketDoc[]>>();
  for (const d of docs) {
    const buckets = byVersion.get(d.version) ?? new Map<number, MetricBucketDoc[]>();
    const t = d.bucketStart.getTime();
    buckets.set(t, [...(buckets.get(t) ?? []), d]);
    byVersion.set(d.version, buckets);
  }
  const series: Record<string, HealthPoint[]> = {};
  const histogram: Record<string, number[]> = {};
  for (const [version, buckets] of [...byVersion].sort(([a], [b]) => a.localeCompare(b))) {
    const hist = emptyHistogram();
    series[version] = [...buckets]
      .sort(([a], [b]) => a - b)
      .map(([t, list]) => {
        const counts = emptyCounts();
        for (const d of list) mergeCounts(counts, d);
        mergeHistograms(hist, counts.latencyHist);
        const s = summarize(counts);
        return { t, requests: s.requests, successRate: s.successRate, p50Ms: s.p50Ms, p95Ms: s.p95Ms, p99Ms: s.p99Ms, rate: s.requests / (list[0]!.bucketMs / 1000) };
      });
    histogram[version] = hist;
  }
  return { series, histogram };
}

/** A service's runs (one per workflow id and run) from its newest events, newest first. */
export function runsOf(events: readonly EventDoc[], link: (workflowId: string) => string | undefined): RunLink[] {
  const runs = new Map<string, RunLink>();
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    if (!e.workflowId) continue;
    const key = `${e.workflowId}\u0000${e.runId ?? ''}`;
    const run = runs.get(key);
    if (run) {
      run.lastKind = e.kind;
      run.lastStatus = e.status;
      run.lastAt = e.time;
      run.version ??= e.version;
    } else {
      const url = link(e.workflowId);
      runs.set(key, {
        workflowId: e.workflowId,
        ...(e.runId ? { runId: e.runId } : {}),
        ...(e.version ? { version: e.version } : {}),
        firstKind: e.kind,
        lastKind: e.kind,
        lastStatus: e.status,
        startedAt: e.time,
        lastAt: e.time,
        ...(url ? { temporalUi: e.runId ? `${url}/${encodeURIComponent(e.runId)}` : url } : {}),
      });
    }
  }
  return [...runs.values()].sort((a, b) => b.lastAt.getTime() - a.lastAt.getTime());
}

export function dashboardRouter(deps: { config: Config; store: Store; temporalUiUrl?: string }): Router {
  const { config, store } = deps;
  const link = (workflowId: string) => temporalUiLink(deps.temporalUiUrl, config.temporal.namespace, workflowId);
  const router = Router();

  router.get('/overview', async (_req, res) => {
    const services = await store.services.find({}, { projection: { _id: 0 } }).sort({ name: 1 }).toArray();
    const watch = await Promise.all(services.map((s) => watchStatus(store, s)));
    const present = watch.filter((s) => s.state === 'PRESENT');
    const count = (state: string) => store.versions.countDocuments({ state: state as never });
    const [active, canary, rolledBack, transforms] = await Promise.all([count('ACTIVE'), count('CANARY'), count('ROLLED_BACK'), transformTotals(store)]);
    res.json({
      at: new Date(),
      watch: { services: present.length, validating: present.filter((s) => s.validating).length, failed: present.filter((s) => s.lastValidation && !s.lastValidation.ok).length },
      deployments: { active, canary, failed: rolledBack },
      transforms,
      services: watch,
    } satisfies Overview);
  });

  router.get('/services/:name/dashboard', async (req, res) => {
    const name = serviceParam(req.params.name);
    if (!(await store.services.findOne({ name }))) throw new HttpError(404, 'not_found', `no service ${name}`);
    const minutes = Math.min(intParam(req.query.minutes, 'minutes', 15, 1)!, MAX_HISTORY_MINUTES);
    const now = Date.now();
    const since = new Date(now - minutes * 60_000);
    const [docs, events, sessions, transforms] = await Promise.all([
      store.metrics.find({ service: name, bucketStart: { $gte: since } }, { projection: { _id: 0 } }).toArray(),
      store.events.find({ service: name }, { projection: { _id: 0 } }).sort({ seq: -1 }).limit(RUN_EVENTS).toArray(),
      store.sessions.find({ service: name, closedAt: { $exists: false } }, { projection: { _id: 0, version: 1 } }).toArray(),
      transformTotals(store, name),
    ]);
    const { series, histogram } = healthHistory(docs);
    const versions = new Set([...Object.keys(series), ...sessions.map((s) => s.version)]);
    const clients: Record<string, { sessions: number; clients: string[] }> = {};
    for (const version of [...versions].sort()) {
      // Client names seen in captured traffic (when capture is on); ids never leave the server.
      const names = await store.messages.distinct('clientName', { service: name, version, at: { $gte: since } }).catch(() => []);
      clients[version] = { sessions: sessions.filter((s) => s.version === version).length, clients: (names as unknown[]).filter((n): n is string => typeof n === 'string').sort() };
    }
    res.json({
      service: name,
      since,
      until: new Date(now),
      latencyBoundsMs: LATENCY_BOUNDS_MS,
      series,
      histogram,
      clients,
      transforms,
      runs: runsOf(events, link),
      // Oldest first, as a history reads; the page keeps those of the deployment it shows.
      analyses: events.filter((e): e is typeof e & AnalysisEvent => e.kind === 'ANALYSIS').reverse(),
    } satisfies ServiceBoard);
  });

  return router;
}
