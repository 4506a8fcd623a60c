/**
 * Differential replay's activities (workflows/replay-workflow.ts): prepare (pick the traffic, open
 * the report), run (replay it against a candidate and a second stable instance, heartbeating the
 * position so that a new worker resumes where a lost one stopped), finish (judge the noise, count,
 * decide the gate, fill the compatibility matrix's replay cells).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { MongoServerError } from 'mongodb';
import { insertAbsent, insertOneAbsent } from '../core/insert-absent.ts';
import type { Config } from '../core/config.ts';
import type { ReplayItemDoc, ReplayReportDoc } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import { loadManifest } from '../core/manifest.ts';
import type { Store } from '../core/mongo.ts';
import { replayStore } from '../core/replay-store.ts';
import { readRouting } from '../core/routing-store.ts';
import { comparable, diffJson, failureOf } from '../compat/replay-diff.ts';
import { loadTransforms } from '../compat/load.ts';
import { PinChains } from '../compat/pin-chains.ts';
import { emptyCounts, schemaCells, writeCells } from '../compat/matrix.ts';
import { gateVerdict } from '../compat/replay-gate.ts';
import { toolPolicy } from '../compat/replay-policy.ts';
import { replayFinishedEvent } from '../compat/replay-finished.ts';
import { replayCells, summarise } from '../compat/replay-report.ts';
import { replaySchemaDiff } from '../compat/replay-schema.ts';
import { planReplay, type ReplayPlan, type ReplayUnit, type SelectableDoc } from '../compat/replay-select.ts';
import type { GateThresholds, ReplayInput, ReplayItem, ReplayReport, ReplaySelection, ReplayStatus } from '../compat/replay-types.ts';
import { Conversation } from './replay-conversation.ts';
import { startReplayInstance, type ReplayInstance } from './replay-instances.ts';
import { pinnedRequest, type PinnedRequest } from './replay-pin.ts';

/** What prepare fixed for every attempt of the run: the same plan is drawn again from it. */
export interface ReplayParams {
  replayId: string;
  service: string;
  candidate: string;
  /** Undefined when nothing is active: there is no traffic to replay. */
  baseline?: string;
  candidateDir: string;
  baselineDir?: string;
  /** `since` and `until` filled in, and the sample size. */
  selection: ReplaySelection & { since: string; until: string; sampleSize: number };
  allowTools: string[];
  concurrency: number;
  thresholds: GateThresholds;
  total: number;
  /** The deployment whose gate this replay is. */
  parent?: WorkflowRef;
}

export interface WorkflowRef {
  workflowId: string;
  runId: string;
}

/** The position a run heartbeats: units before it are done and stored. */
export interface ReplayProgress {
  position: number;
  done: number;
  total: number;
}

const REQUEST_TIMEOUT_MS = 30_000;
const PROGRESS_WRITE_MS = 1_000;

const CAPTURE_FIELDS = {
  _id: 0,
  messageId: 1,
  raw: 1,
  truncated: 1,
  direction: 1,
  kind: 1,
  method: 1,
  rpcId: 1,
  toolName: 1,
  sessionId: 1,
  clientKey: 1,
  protocolRevision: 1,
  clientName: 1,
  clientVersion: 1,
  versionAsked: 1,
  at: 1,
} as const;

function dirOf(doc: { state: string; stagedDir?: string; archiveDir?: string }): string | undefined {
  return doc.state === 'ARCHIVED' ? doc.archiveDir : (doc.stagedDir ?? doc.archiveDir);
}

/** The chains pinned clients' requests take to each instance's version. */
interface Pins {
  candidate: PinChains;
  stable: PinChains;
}

/**
 * Each version's own transforms (every version carries those up to itself). Ones that do not load
 * fail validation; here they refuse the pins, as the gateway would.
 */
async function pinChains(params: ReplayParams): Promise<Pins> {
  const load = (dir: string) => loadTransforms(dir).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  const [candidate, stable] = await Promise.all([load(params.candidateDir), load(params.baselineDir!)]);
  return { candidate: new PinChains(params.service, params.candidate, candidate), stable: new PinChains(params.service, params.baseline!, stable) };
}

/** The tool a request calls, as the instance receives it (a transform may rename it). */
function toolCalled(message: Record<string, unknown> | undefined, captured: string | undefined): string | undefined {
  const name = (message?.params as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : captured;
}

export function replayActivities(deps: { config: Config; store: Store; events: EventStore; temporal?: Client }) {
  const { store, config } = deps;

  /**
   * Why a replay was cancelled. A gate's replay is also cancelled when its deployment closes
   * (terminated from outside, say): Temporal has closed that deployment by then, so its status tells.
   */
  async function cancelReason(parent: WorkflowRef | undefined): Promise<string> {
    if (!parent) return 'cancelled';
    const status = await deps.temporal?.workflow
      .getHandle(parent.workflowId, parent.runId)
      .describe()
      .then((d) => d.status.name)
      .catch(() => undefined);
    return status && status !== 'RUNNING' ? `cancelled: the deployment ${parent.workflowId} that ran this gate was ${status.toLowerCase().replaceAll('_', ' ')}` : `cancelled by the deployment ${parent.workflowId}`;
  }

  async function loadCapture(params: Pick<ReplayParams, 'service' | 'baseline' | 'selection'>): Promise<SelectableDoc[]> {
    if (!params.baseline) return [];
    return store.messages
      .find({ service: params.service, version: params.baseline, at: { $gte: new Date(params.selection.since), $lte: new Date(params.selection.until) } }, { projection: CAPTURE_FIELDS })
      .sort({ at: 1, messageId: 1 })
      .toArray() as Promise<SelectableDoc[]>;
  }

  const planOf = async (params: ReplayParams, docs?: SelectableDoc[]): Promise<ReplayPlan> => planReplay(docs ?? (await loadCapture(params)), params.selection, params.replayId);

  /** The schema diff of the two instances' tool lists, weighted by the window's captured calls, kept with the report. */
  async function storeSchemaDiff(params: ReplayParams, docs: SelectableDoc[], stable: ReplayInstance, candidate: ReplayInstance, pins: Pins): Promise<void> {
    const schema = replaySchemaDiff({ service: params.service, baseline: params.baseline!, candidate: params.candidate, before: stable.tools, after: candidate.tools, docs, selection: params.selection, chains: pins.candidate });
    const { reports } = await replayStore(store);
    await reports.updateOne({ replayId: params.replayId }, { $set: { schema } });
  }

  /** Replays one unit on both instances; returns the items of its compared requests. */
  async function replayUnit(unit: ReplayUnit, firstIndex: number, candidate: ReplayInstance, stable: ReplayInstance, pins: Pins, policy: ReturnType<typeof toolPolicy>, signal: AbortSignal): Promise<ReplayItem[]> {
    const conversation = (url: string) => {
      const answers = Object.fromEntries(Object.entries(unit.clientAnswers).map(([m, list]) => [m, [...list]]));
      return new Conversation({ url, stateful: unit.stateful, timeoutMs: REQUEST_TIMEOUT_MS, signal, clientAnswer: (method) => answers[method]?.shift() });
    };
    const onCandidate = conversation(candidate.url);
    const onStable = conversation(stable.url);
    const send = async (c: Conversation, request: PinnedRequest) => {
      if (!request.message) return { answer: request.answer, error: undefined };
      return c.send(request.message).then(
        (answer) => ({ answer: answer && request.back(answer), error: undefined }),
        (err: unknown) => {
          if (signal.aborted) throw err;
          return { answer: undefined, error: (err as Error).message };
        },
      );
    };
    const items: ReplayItem[] = [];
    let index = firstIndex;
    try {
      for (const step of unit.steps) {
        const base = {
          method: step.method,
          messageId: step.messageId,
          ...(step.tool ? { tool: step.tool } : {}),
          ...(step.protocolRevision ? { protocolRevision: step.protocolRevision } : {}),
          ...(step.clientName ? { clientName: step.clientName } : {}),
          ...(step.clientVersion ? { clientVersion: step.clientVersion } : {}),
          candidateDiffs: [],
          noiseDiffs: [],
        };
        // A pinned client's request goes to each instance through that version's chain.
        const toCandidate = step.message && pinnedRequest(pins.candidate, step.versionAsked, step.message);
        const toStable = step.message && pinnedRequest(pins.stable, step.versionAsked, step.message);
        const refused = step.method === 'tools/call' ? [toCandidate, toStable].flatMap((r) => toolCalled(r?.message, step.tool) ?? []).map(policy).find((p) => !p.replay) : undefined;
        const skip = !toCandidate || !toStable ? step.unreadable : refused ? `side-effect policy: ${refused.reason}` : undefined;
        if (skip || !toCandidate || !toStable) {
          if (step.compared) items.push({ index: index++, ...base, skipped: skip ?? 'unreadable' });
          continue;
        }
        const [c, s] = await Promise.all([send(onCandidate, toCandidate), send(onStable, toStable)]);
        if (!step.compared) continue;
        const candidateFailure = c.error ?? failureOf(c.answer);
        const stableFailure = s.error ?? failureOf(s.answer);
        if (candidateFailure && !stableFailure) {
          items.push({ index: index++, ...base, broke: candidateFailure });
          continue;
        }
        const now = comparable(s.answer ?? { error: { message: s.error } });
        items.push({
          index: index++,
          ...base,
          candidateDiffs: diffJson(now, comparable(c.answer ?? { error: { message: c.error } })),
          noiseDiffs: step.answer ? diffJson(comparable(toStable.back(step.answer)), now) : [],
        });
      }
    } finally {
      await Promise.all([onCandidate.close(), onStable.close()]);
    }
    return items;
  }

  return {
    /** Resolves the versions, fixes the window and the sample, and opens the report. */
    async prepareReplay(input: ReplayInput, ids: { replayId: string; workflowId: string; parent?: WorkflowRef }): Promise<ReplayParams> {
      const { service, candidate } = input;
      const candidateDoc = await store.versions.findOne({ service, version: candidate });
      const candidateDir = candidateDoc && dirOf(candidateDoc);
      if (!candidateDoc || !candidateDir) throw ApplicationFailure.nonRetryable(`no version ${candidate} of service ${service} with files to run`, 'NotFound');
      const gate = (await loadManifest(candidateDir)).rollout.replayGate;
      const selection = input.selection ?? {};
      const baseline = selection.baseline ?? (await readRouting(store, service)).stable;
      if (baseline === candidate) throw ApplicationFailure.nonRetryable(`${service}@${candidate} is the stable version: replay compares a candidate with the stable version`, 'BadReplay');
      const baselineDoc = baseline ? await store.versions.findOne({ service, version: baseline }) : null;
      if (baseline && !baselineDoc) throw ApplicationFailure.nonRetryable(`no version ${baseline} of service ${service}`, 'NotFound');
      const until = selection.until ?? new Date().toISOString();
      const since = selection.since ?? new Date(Date.parse(until) - gate.windowHours * 3_600_000).toISOString();
      const params: ReplayParams = {
        replayId: ids.replayId,
        service,
        candidate,
        candidateDir,
        ...(baseline ? { baseline } : {}),
        ...(baselineDoc && dirOf(baselineDoc) ? { baselineDir: dirOf(baselineDoc)! } : {}),
        selection: { ...selection, since, until, sampleSize: selection.sampleSize ?? gate.sampleSize },
        allowTools: gate.allowTools,
        concurrency: gate.concurrency,
        thresholds: { maxBreakingShare: gate.maxBreakingShare, maxDifferingShare: gate.maxDifferingShare, minMessages: gate.minMessages },
        total: 0,
        ...(ids.parent ? { parent: ids.parent } : {}),
      };
      params.total = (await planOf(params)).total;
      const { reports } = await replayStore(store);
      const report: ReplayReportDoc = {
        replayId: ids.replayId,
        workflowId: ids.workflowId,
        service,
        candidate,
        baseline: baseline ?? '',
        trigger: input.trigger,
        status: 'RUNNING',
        selection: params.selection,
        total: params.total,
        done: 0,
        counts: emptyCounts(),
        perTool: {},
        skippedTools: {},
        topPaths: [],
        noisyPaths: [],
        samples: [],
        startedAt: new Date(),
        resumes: [],
      };
      // A retried prepare keeps the report it opened. (Not an upsert with $setOnInsert: FerretDB
      // leaves the empty arrays and objects out of the document it inserts that way.)
      await insertOneAbsent(reports, report);
      await deps.events.append({ service, version: candidate, kind: 'REPLAY_STARTED', status: 'running', workflowId: ids.workflowId, details: { replayId: ids.replayId, baseline: baseline ?? null, total: params.total, trigger: input.trigger } });
      return params;
    },

    /**
     * Replays the plan from the heartbeated position. Units run `concurrency` at a time; the
     * position only passes a unit once every unit before it is stored, so a resumed attempt redoes
     * at most the units that were in flight (their items are upserted, never counted twice).
     */
    async runReplay(params: ReplayParams): Promise<ReplayProgress> {
      const ctx = Context.current();
      const resumed = (ctx.info.heartbeatDetails as ReplayProgress | undefined)?.position ?? 0;
      const { reports, items } = await replayStore(store);
      if (resumed > 0) await reports.updateOne({ replayId: params.replayId }, { $push: { resumes: { attempt: ctx.info.attempt, position: resumed, at: new Date() } } });
      // Loading a large capture and starting instances may each take longer than the heartbeat
      // timeout on a loaded machine: the ticker keeps the attempt alive from the start (until the
      // plan is known it repeats what the last attempt reached).
      let progress = (): ReplayProgress | undefined => ctx.info.heartbeatDetails as ReplayProgress | undefined;
      const ticker = setInterval(() => ctx.heartbeat(progress()), 2_000);
      try {
        const docs = await loadCapture(params);
        const plan = await planOf(params, docs);
        const offsets: number[] = [];
        plan.units.reduce((at, unit) => (offsets.push(at), at + unit.steps.filter((s) => s.compared).length), 0);
        let done = resumed < plan.units.length ? offsets[resumed]! : plan.total;
        if (resumed >= plan.units.length || !params.baselineDir) return { position: plan.units.length, done, total: plan.total };

        let position = resumed;
        progress = () => ({ position, done, total: plan.total });
        const signal = ctx.cancellationSignal;
        const label = (role: string) => `${params.service}-${role}-${params.replayId.slice(0, 8)}-${ctx.info.attempt}`;
        const started = await Promise.allSettled([
          startReplayInstance({ dir: params.candidateDir, label: label(`${params.candidate}-candidate`), stateDir: config.stateDir, readyTimeoutMs: config.runner.readyTimeoutMs, signal }),
          startReplayInstance({ dir: params.baselineDir, label: label(`${params.baseline}-stable`), stateDir: config.stateDir, readyTimeoutMs: config.runner.readyTimeoutMs, signal }),
        ]);
        const running = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        try {
          const failed = started.find((r) => r.status === 'rejected');
          if (failed) throw (failed as PromiseRejectedResult).reason;
          const [candidate, stable] = running as [ReplayInstance, ReplayInstance];
          const pins = await pinChains(params);
          // Before any unit: a position past 0 in a heartbeat means the diff is stored.
          if (resumed === 0) await storeSchemaDiff(params, docs, stable, candidate, pins);
          const policy = toolPolicy([stable.tools, candidate.tools], params.allowTools);
          const finished = new Set<number>();
          let next = resumed;
          let lastWrite = 0;
          const worker = async () => {
            while (next < plan.units.length) {
              if (signal.aborted) throw signal.reason;
              const u = next++;
              const unitItems = await replayUnit(plan.units[u]!, offsets[u]!, candidate, stable, pins, policy, signal);
              // A unit redone after a lost worker finds some of its items stored already: the same
              // requests, left as they are. Inserts, not upserts: each FerretDB upsert read every
              // stored item (bench/replay.ts: 15 s per 100 upserts at 700 stored, 20 ms inserted).
              if (unitItems.length) await insertAbsent(items, unitItems.map((item) => ({ ...item, replayId: params.replayId }) as ReplayItemDoc));
              finished.add(u);
              while (finished.has(position)) {
                finished.delete(position);
                done += plan.units[position]!.steps.filter((s) => s.compared).length;
                position++;
              }
              ctx.heartbeat(progress());
              if (Date.now() - lastWrite >= PROGRESS_WRITE_MS) {
                lastWrite = Date.now();
                await reports.updateOne({ replayId: params.replayId }, { $set: { done } });
              }
            }
          };
          await Promise.all(Array.from({ length: Math.min(params.concurrency, plan.units.length) }, worker));
          await reports.updateOne({ replayId: params.replayId }, { $set: { done } });
          return { position, done, total: plan.total };
        } finally {
          await Promise.all(running.map((i) => i.stop()));
        }
      } finally {
        clearInterval(ticker);
      }
    },

    /**
     * Judges noise over every replayed request, counts, decides the gate, stores the report and the
     * matrix cells. A cancelled report gets the reason (`error`) found here.
     */
    async finishReplay(params: ReplayParams, status: ReplayStatus, failure?: string): Promise<ReplayReport> {
      const error = status === 'CANCELLED' ? await cancelReason(params.parent) : failure;
      const { reports, items } = await replayStore(store);
      const all = (await items.find({ replayId: params.replayId }, { projection: { _id: 0, replayId: 0 } }).sort({ index: 1 }).toArray()) as ReplayItem[];
      const { classified, ...summary } = summarise(all);
      const skippedTools: Record<string, string> = {};
      for (const item of all) if (item.skipped && item.tool) skippedTools[item.tool] = item.skipped;
      const finishedAt = new Date();
      const previous = await reports.findOne({ replayId: params.replayId });
      const startedAt = previous?.startedAt ?? finishedAt;
      const gate = status === 'DONE' ? { ...gateVerdict(summary.counts, params.thresholds, previous?.schema), thresholds: params.thresholds } : undefined;
      const update = {
        status,
        ...summary,
        done: all.length,
        skippedTools,
        finishedAt,
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        ...(gate ? { gate } : {}),
        ...(error ? { error } : {}),
      };
      // The matrix first: a reader that sees the report finished finds its cells there.
      if (status === 'DONE') {
        await writeCells(store, params.service, params.candidate, 'replay', replayCells(classified, params.replayId, finishedAt));
        if (previous?.schema) await writeCells(store, params.service, params.candidate, 'schema', schemaCells(previous.schema, params.replayId, finishedAt));
      }
      await reports.updateOne({ replayId: params.replayId }, { $set: update });
      const report = (await reports.findOne({ replayId: params.replayId }, { projection: { _id: 0 } }))!;
      await deps.events.append(replayFinishedEvent(report));
      return report;
    },
  };
}
