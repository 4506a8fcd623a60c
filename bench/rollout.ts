/**
 * Benchmark (issue 5): how fast a breach takes a bad canary out of rotation and rolls its
 * deployment back, and what a full promotion costs end to end under live MCP traffic.
 *
 * One real system (`startSystem`: Temporal dev server + FerretDB + worker + runner + file watcher
 * + API/gateway, all in this process) on free ports with a fresh state dir; one copy of
 * examples/services/calculator under its services root, with a rollout block. Its `add` carries,
 * from the first version on, the regression of test/integration/deployment.test.ts: it throws
 * when the instance's env has CALC_PROD=1, which only a bad change sets (manifest start.env). The
 * first version goes straight to 100% (nothing to compare against); it is the warm-up.
 *
 * 1. Promotions (BENCH_PROMOTIONS): live traffic (test/support/mcp-traffic.ts: SDK clients calling
 *    `add` through the gateway, a new session every few calls so that new sessions follow the
 *    weights) runs from before the save until the replaced version's instances have stopped. A
 *    content change is saved and followed to PROMOTED, with steps [10, 50, 100] held
 *    intervalSec each. From the events:
 *      validation   = STAGED − the write (watcher debounce + lint, test, build + staging)
 *      ready        = INSTANCE_READY − STAGED (deployment started, instance started and answering)
 *      ramp         = PROMOTED − INSTANCE_READY (its floor is the holds: 2 steps × intervalSec)
 *    the calls that failed for the clients (target 0), the calls that got 404 (their version was
 *    pulled) and needed a new session first, and PROMOTED → the replaced version's last instance
 *    stopped (a round where they were still up after STOP_GUARD_MS says so).
 * 2. Breaches (BENCH_BREACHES): a bad change is one manifest write (start.env CALC_PROD=1, and a
 *    fresh description so that each is a new version) with steps [50, 100] and a 30 s hold, so
 *    that the breaker, not the step's analysis, ends it. The trip is caught in the gateway
 *    breaker's own onTrip callback (TripEvent.at); from that instant MongoDB's routing doc is
 *    polled every POLL_MS until the canary's weight is 0. ROLLED_BACK is read from the
 *    VersionDoc's history. Times are all Date.now() of this one process.
 *
 * Run: npx tsx bench/rollout.ts   (BENCH_PROMOTIONS=2, BENCH_BREACHES=3, BENCH_INTERVAL_SEC=2)
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TripEvent } from '../api/gateway/breaker.ts';
import { startSystem, type System } from '../cli/system.ts';
import type { EventDoc } from '../core/documents.ts';
import { createLogger } from '../core/log.ts';
import { readRouting } from '../core/routing-store.ts';
import { McpTraffic, type TrafficReport } from '../test/support/mcp-traffic.ts';
import { waitFor } from '../test/support/wait.ts';
import {
  addSampleService,
  benchConfig,
  benchStateDir,
  eventReason,
  eventsUntil,
  eventTime,
  fmtMs,
  heading,
  machineLine,
  onceCleanup,
  removeStateDir,
  summarize,
  table,
  verdict,
} from './lib/common.ts';

const PROMOTIONS = Number(process.env.BENCH_PROMOTIONS ?? 2);
const BREACHES = Number(process.env.BENCH_BREACHES ?? 3);
const INTERVAL_SEC = Number(process.env.BENCH_INTERVAL_SEC ?? 2);
const SERVICE = 'bench-calc';
/** How often the routing doc is read from the trip on. */
const POLL_MS = 10;
/** Guards a hang only; a save normally takes well under a minute to reach its outcome. */
const ROUND_GUARD_MS = 240_000;
const WEIGHT_GUARD_MS = 10_000;
const STOP_GUARD_MS = 60_000;

const ROLLOUT = {
  autoDeploy: true,
  steps: [10, 50, 100],
  intervalSec: INTERVAL_SEC,
  // requireTraffic off: at 10% for a couple of seconds a step may see too few canary sessions to
  // judge, and this measures the ramp's timing, not the analysis (the breaker guards the errors).
  analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.95, maxP99Ms: 5000, maxFailedChecks: 0 },
  breaker: { minRequests: 5, maxErrorRate: 0.2, windowMs: 10_000, cooldownMs: 60_000 },
};
/** The bad canaries: half of new sessions at once, held long enough for the breaker to decide. */
const BREACH_ROLLOUT = { ...ROLLOUT, steps: [50, 100], intervalSec: 30 };

const ADD = "fn: (a, b) => a + b }";
// Validation steps get the manifest's env too, with CI=true: a regression the service's own tests miss.
const BROKEN_ADD = "fn: (a, b) => { if (process.env.CALC_PROD === '1' && process.env.CI !== 'true') throw new Error('regression in add'); return a + b; } }";
const ENDS = new Set(['PROMOTED', 'ROLLBACK_COMPLETE', 'DEPLOYMENT_ABORTED', 'VALIDATION_FAILED']);

const log = createLogger('warn', 'bench');

// ------------------------------------------------------------------------------------------
// The service

/** The latent regression, patched into the copy before it is moved in (so the first version has it). */
async function breakAdd(dir: string): Promise<void> {
  const server = path.join(dir, 'src', 'server.js');
  const source = await readFile(server, 'utf8');
  if (!source.includes(ADD)) throw new Error(`${server} changed shape; update the regression patch`);
  await writeFile(server, source.replace(ADD, BROKEN_ADD));
}

/** Resolves with the service's events after `afterSeq` up to and including the first end event. */
function eventsUntilEnd(system: System, afterSeq: number): Promise<EventDoc[]> {
  return eventsUntil(system.events, {
    service: SERVICE,
    afterSeq,
    isEnd: (e) => ENDS.has(e.kind),
    guardMs: ROUND_GUARD_MS,
    expected: 'end event',
    describe: (e) => `${e.kind}${e.version ? `@${e.version}` : ''}`,
  });
}

/**
 * Until a version has no instance left that is not stopped (drain included); bounded. Resolves with
 * how long that took from `from`, or NaN when the instances were still up at the guard: the round's
 * figures then say so instead of passing over it.
 */
async function instancesStopped(system: System, version: string, from: number): Promise<number> {
  try {
    await waitFor(`${SERVICE}@${version} instances to stop`, async () => (await system.store.instances.countDocuments({ service: SERVICE, version, state: { $ne: 'stopped' } })) === 0 || undefined, STOP_GUARD_MS, 100);
    return Date.now() - from;
  } catch (err) {
    console.error(`${(err as Error).message} (${STOP_GUARD_MS / 1000} s)`);
    return Number.NaN;
  }
}

async function trafficFlowing(traffic: McpTraffic): Promise<void> {
  await waitFor('traffic to flow', () => traffic.report.ok > 5, 30_000, 50);
}

// ------------------------------------------------------------------------------------------
// 1. Promotions

interface PromotionFigures {
  version: string;
  outcome: string;
  validationMs: number;
  readyMs: number;
  rampMs: number;
  totalMs: number;
  /** Canary requests each step's analysis saw. */
  stepRequests: number[];
  /** PROMOTED → the replaced version's last instance stopped; NaN: not within STOP_GUARD_MS (or not promoted). */
  oldStoppedMs: number;
  report: TrafficReport;
  reason?: string;
}

async function measurePromotion(system: System, url: string, file: string, content: string): Promise<PromotionFigures> {
  const previous = (await readRouting(system.store, SERVICE)).stable;
  const traffic = new McpTraffic(url, 2, 20, 5);
  await trafficFlowing(traffic);
  const afterSeq = await system.events.lastSeq();
  const waiting = eventsUntilEnd(system, afterSeq);
  await writeFile(file, content);
  const writtenAt = Date.now();
  let events: EventDoc[];
  let oldStoppedMs = Number.NaN;
  try {
    events = await waiting;
    // The clients keep calling while the replaced version drains and stops: a failure then counts too.
    const end = events.at(-1)!;
    if (previous && end.kind === 'PROMOTED') oldStoppedMs = await instancesStopped(system, previous, eventTime(end));
  } finally {
    await traffic.stop();
  }
  const end = events.at(-1)!;
  const staged = events.find((e) => e.kind === 'STAGED');
  const version = staged?.version ?? end.version ?? '?';
  const mine = events.filter((e) => e.version === version);
  const ready = mine.filter((e) => e.kind === 'INSTANCE_READY').at(-1);
  return {
    version,
    outcome: end.kind,
    validationMs: eventTime(staged) - writtenAt,
    readyMs: eventTime(ready) - eventTime(staged),
    rampMs: eventTime(end) - eventTime(ready),
    totalMs: eventTime(end) - writtenAt,
    stepRequests: mine.filter((e) => e.kind === 'ANALYSIS').map((e) => Number((e.details as { requests?: number }).requests ?? Number.NaN)),
    oldStoppedMs,
    report: traffic.report,
    ...(end.kind !== 'PROMOTED' ? { reason: eventReason(end) } : {}),
  };
}

// ------------------------------------------------------------------------------------------
// 2. Breaches

interface BreachFigures {
  version: string;
  outcome: string;
  reason: string;
  tripped: boolean;
  /** All from TripEvent.at. */
  weight0SeenMs: number;
  routingWrittenMs: number;
  breakerEventMs: number;
  workflowWeightsMs: number;
  rolledBackMs: number;
  rollbackCompleteMs: number;
  /** From the canary's first CANARY_STEP (50% of new sessions) to the trip. */
  liveToTripMs: number;
  polls: number;
  /** ROLLBACK_COMPLETE → the canary's last instance stopped; NaN: not within STOP_GUARD_MS (or not rolled back). */
  canaryStoppedMs: number;
  report: TrafficReport;
}

/** Reads the routing doc every POLL_MS from the trip until the version's weight is 0. */
async function pollWeightZero(system: System, version: string): Promise<{ seenAt: number; updatedAt: number; polls: number }> {
  const deadline = Date.now() + WEIGHT_GUARD_MS;
  let polls = 0;
  while (Date.now() < deadline) {
    polls++;
    const routing = await readRouting(system.store, SERVICE).catch(() => undefined);
    if (routing && (routing.weights[version] ?? 0) === 0) return { seenAt: Date.now(), updatedAt: routing.updatedAt?.getTime() ?? Number.NaN, polls };
    await sleep(POLL_MS);
  }
  return { seenAt: Number.NaN, updatedAt: Number.NaN, polls };
}

interface Armed {
  trip?: TripEvent;
  weight0?: Promise<{ seenAt: number; updatedAt: number; polls: number }>;
}

async function measureBreach(system: System, url: string, manifestFile: string, n: number, armed: Armed): Promise<BreachFigures> {
  const traffic = new McpTraffic(url, 3, 20, 5);
  await trafficFlowing(traffic);
  const afterSeq = await system.events.lastSeq();
  const waiting = eventsUntilEnd(system, afterSeq);
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
  await writeFile(
    manifestFile,
    JSON.stringify({ ...manifest, description: `bench breach ${n}`, start: { ...manifest.start, env: { CALC_PROD: '1' } }, rollout: BREACH_ROLLOUT }, null, 2),
  );
  let events: EventDoc[];
  try {
    events = await waiting;
  } finally {
    await traffic.stop();
  }
  const end = events.at(-1)!;
  const version = events.find((e) => e.kind === 'STAGED')?.version ?? end.version ?? '?';
  const trip = armed.trip;
  const weight0 = armed.weight0 ? await armed.weight0 : undefined;
  const t0 = trip ? trip.at.getTime() : Number.NaN;
  if (trip && trip.version !== version) console.error(`breach ${n}: the breaker tripped for ${trip.version}, not the canary ${version}`);

  const doc = await system.store.versions.findOne({ service: SERVICE, version });
  const rolledBack = doc?.history.find((h) => h.state === 'ROLLED_BACK');
  const mine = events.filter((e) => e.version === version);
  // The workflow's own weight change (rollBack's setWeights): recorded under the stable version, pulling the canary.
  const workflowWeights = events.find((e) => e.kind === 'WEIGHTS_SET' && eventTime(e) >= t0 && ((e.details as { pulled?: string[] }).pulled ?? []).includes(version));
  const canaryLive = mine.find((e) => e.kind === 'CANARY_STEP');
  const result: BreachFigures = {
    version,
    outcome: end.kind,
    reason: eventReason(end),
    tripped: trip !== undefined,
    weight0SeenMs: (weight0?.seenAt ?? Number.NaN) - t0,
    routingWrittenMs: (weight0?.updatedAt ?? Number.NaN) - t0,
    breakerEventMs: eventTime(mine.find((e) => e.kind === 'BREAKER_OPEN')) - t0,
    workflowWeightsMs: eventTime(workflowWeights) - t0,
    rolledBackMs: (rolledBack ? new Date(rolledBack.at).getTime() : Number.NaN) - t0,
    rollbackCompleteMs: eventTime(mine.find((e) => e.kind === 'ROLLBACK_COMPLETE')) - t0,
    liveToTripMs: t0 - eventTime(canaryLive),
    polls: weight0?.polls ?? 0,
    canaryStoppedMs: end.kind === 'ROLLBACK_COMPLETE' ? await instancesStopped(system, version, eventTime(end)) : Number.NaN,
    report: traffic.report,
  };
  return result;
}

// ------------------------------------------------------------------------------------------

const stoppedCell = (ms: number) => (Number.isNaN(ms) ? `not within ${STOP_GUARD_MS / 1000} s` : fmtMs(ms));
const fmtList = (xs: number[]) => (xs.length ? xs.map((x) => (Number.isNaN(x) ? '—' : String(x))).join(' / ') : '—');

function printPromotions(promotions: PromotionFigures[], first: { version: string; totalMs: number } | undefined): void {
  const floorMs = (ROLLOUT.steps.length - 1) * INTERVAL_SEC * 1000;
  console.log(
    table(
      ['version', 'outcome', 'validation', 'ready', 'ramp', 'save → PROMOTED', 'PROMOTED → old stopped', 'canary reqs/step', 'client calls', 'failed', 'new session after 404', 'target 0 failed'],
      promotions.map((p) => [
        p.version,
        p.outcome,
        fmtMs(p.validationMs),
        fmtMs(p.readyMs),
        fmtMs(p.rampMs),
        fmtMs(p.totalMs),
        p.outcome === 'PROMOTED' ? stoppedCell(p.oldStoppedMs) : '—',
        fmtList(p.stepRequests),
        String(p.report.calls),
        String(p.report.failed),
        String(p.report.reinitialized),
        verdict(p.report.failed === 0),
      ]),
    ),
  );
  const promoted = promotions.filter((p) => p.outcome === 'PROMOTED');
  if (promoted.length) {
    const s = (f: (p: PromotionFigures) => number) => summarize(promoted.map(f));
    console.log();
    console.log(
      table(
        ['part (promoted only)', 'p50', 'max'],
        [
          ['validation: save → STAGED (debounce + lint, test, build + stage)', fmtMs(s((p) => p.validationMs).p50), fmtMs(s((p) => p.validationMs).max)],
          ['instances ready: STAGED → INSTANCE_READY', fmtMs(s((p) => p.readyMs).p50), fmtMs(s((p) => p.readyMs).max)],
          [`ramp: INSTANCE_READY → PROMOTED (floor ${fmtMs(floorMs)} of holds)`, fmtMs(s((p) => p.rampMs).p50), fmtMs(s((p) => p.rampMs).max)],
          ['  of which beyond the holds', fmtMs(s((p) => p.rampMs - floorMs).p50), fmtMs(s((p) => p.rampMs - floorMs).max)],
          ['save → PROMOTED', fmtMs(s((p) => p.totalMs).p50), fmtMs(s((p) => p.totalMs).max)],
        ],
      ),
    );
  }
  const total = (f: (r: TrafficReport) => number) => promotions.reduce((n, p) => n + f(p.report), 0);
  const failed = total((r) => r.failed);
  console.log(`\nclient calls failed during the promotions: ${failed} of ${total((r) => r.calls)} (target 0: ${verdict(failed === 0)})`);
  // Not failures (the spec's answer to a pulled session), but each cost the client a new session.
  console.log(`client calls that got 404 and needed a new session first: ${total((r) => r.reinitialized)}`);
  const notStopped = promotions.filter((p) => p.outcome === 'PROMOTED' && Number.isNaN(p.oldStoppedMs));
  if (notStopped.length) console.log(`the replaced version's instances were still up ${STOP_GUARD_MS / 1000} s after PROMOTED in ${notStopped.length} round(s): ${notStopped.map((p) => p.version).join(', ')}`);
  for (const p of promotions) for (const e of p.report.errors.slice(0, 3)) console.log(`  ${p.version}: ${e}`);
  for (const p of promotions.filter((x) => x.reason)) console.log(`  ${p.version} ended ${p.outcome}: ${p.reason}`);
  if (first) console.log(`first version ${first.version} (no canary, straight to 100%): service added → PROMOTED ${fmtMs(first.totalMs)}`);
}

function printBreaches(breaches: BreachFigures[]): void {
  const byBreaker = breaches.filter((b) => b.tripped && b.outcome === 'ROLLBACK_COMPLETE');
  const row = (label: string, values: number[], target?: number) => {
    const s = summarize(values.filter((v) => !Number.isNaN(v)));
    return [label, fmtMs(s.p50), fmtMs(s.max), String(s.n), target === undefined ? '' : `< ${fmtMs(target)}`, target === undefined ? '' : s.n ? verdict(s.max < target) : '—'];
  };
  console.log(
    table(
      ['from the breaker trip (TripEvent.at) to', 'p50', 'max', 'n', 'target', 'max vs target'],
      [
        row(`canary weight 0 seen in MongoDB (${POLL_MS} ms poll)`, byBreaker.map((b) => b.weight0SeenMs), 1000),
        row('  routing doc written (its updatedAt)', byBreaker.map((b) => b.routingWrittenMs)),
        row('  BREAKER_OPEN event', byBreaker.map((b) => b.breakerEventMs)),
        row("  the workflow's own weights set (WEIGHTS_SET)", byBreaker.map((b) => b.workflowWeightsMs)),
        row('version marked ROLLED_BACK (VersionDoc history)', byBreaker.map((b) => b.rolledBackMs), 3000),
        row('  ROLLBACK_COMPLETE event (pool told to stop)', byBreaker.map((b) => b.rollbackCompleteMs)),
      ],
    ),
  );
  console.log();
  console.log(
    table(
      ['version', 'outcome', 'canary live → trip', 'polls', 'ROLLBACK_COMPLETE → canary stopped', 'client calls', 'failed (canary)', 'new session after 404', 'reason'],
      breaches.map((b) => [
        b.version,
        b.outcome,
        fmtMs(b.liveToTripMs),
        String(b.polls),
        b.outcome === 'ROLLBACK_COMPLETE' ? stoppedCell(b.canaryStoppedMs) : '—',
        String(b.report.calls),
        String(b.report.failed),
        String(b.report.reinitialized),
        b.reason.length > 70 ? `${b.reason.slice(0, 70)}…` : b.reason,
      ]),
    ),
  );
  console.log(`client calls that got 404 and needed a new session first: ${breaches.reduce((n, b) => n + b.report.reinitialized, 0)} of ${breaches.reduce((n, b) => n + b.report.calls, 0)}`);
  const other = breaches.filter((b) => !byBreaker.includes(b));
  if (other.length) console.log(`${other.length} bad canar${other.length === 1 ? 'y was' : 'ies were'} not rolled back by the breaker; left out of the figures above`);
}

async function main(): Promise<void> {
  const machine = await machineLine();
  const stateDir = await benchStateDir('rollout');
  const config = await benchConfig(stateDir);
  let system: System | undefined;
  let offTrip: (() => void) | undefined;
  const cleanup = onceCleanup(async () => {
    offTrip?.();
    await system?.stop();
    await removeStateDir(stateDir);
  });
  try {
    console.error(`rollout bench: state dir ${stateDir}; starting the system…`);
    system = await startSystem(config, log, { worker: true, api: true });
    const sys = system;
    const url = `${sys.api!.url}/mcp/${SERVICE}`;

    // Every trip of this service while a breach round is armed: poll from the trip's own callback.
    let armed: Armed | undefined;
    offTrip = sys.api!.traffic.breaker.onTrip((trip) => {
      if (trip.service !== SERVICE || !armed || armed.trip) return;
      armed.trip = trip;
      armed.weight0 = pollWeightZero(sys, trip.version);
    });

    // Warm-up: the first version, straight to 100%; not counted.
    const firstSeq = await sys.events.lastSeq();
    const firstEnd = eventsUntilEnd(sys, firstSeq);
    const addedAt = Date.now();
    const dir = await addSampleService({ sample: 'calculator', service: SERVICE, servicesDir: config.servicesDir, stateDir, manifest: { rollout: ROLLOUT }, patch: breakAdd });
    const firstEvents = await firstEnd;
    const firstLast = firstEvents.at(-1)!;
    if (firstLast.kind !== 'PROMOTED') throw new Error(`the first version ended ${firstLast.kind}: ${eventReason(firstLast)}`);
    const first = { version: firstLast.version ?? '?', totalMs: eventTime(firstLast) - addedAt };
    console.error(`first version ${first.version} PROMOTED after ${fmtMs(first.totalMs)}`);

    const promotions: PromotionFigures[] = [];
    for (let i = 1; i <= PROMOTIONS; i++) {
      const p = await measurePromotion(sys, url, path.join(dir, 'src', 'note.js'), `export const note = ${i};\n`);
      promotions.push(p);
      console.error(
        `promotion ${i}/${PROMOTIONS}: ${p.version} ${p.outcome} in ${fmtMs(p.totalMs)} (validation ${fmtMs(p.validationMs)}, ready ${fmtMs(p.readyMs)}, ramp ${fmtMs(p.rampMs)}); ` +
          `${p.report.calls} calls, ${p.report.failed} failed${p.reason ? ` — ${p.reason}` : ''}`,
      );
    }

    const breaches: BreachFigures[] = [];
    for (let i = 1; i <= BREACHES; i++) {
      armed = {};
      const b = await measureBreach(sys, url, path.join(dir, 'mcp.json'), i, armed);
      armed = undefined;
      breaches.push(b);
      console.error(
        `breach ${i}/${BREACHES}: ${b.version} ${b.outcome}${b.tripped ? `; trip → weight 0 ${fmtMs(b.weight0SeenMs)}, → ROLLED_BACK ${fmtMs(b.rolledBackMs)}` : '; the breaker did not trip'} — ${b.reason}`,
      );
    }

    heading(`rollout: ${PROMOTIONS} promotions, steps ${ROLLOUT.steps.join('/')} held ${INTERVAL_SEC} s, under live MCP traffic`);
    console.log(machine);
    console.log(`debounce ${config.watcher.debounceMs} ms, drain ${config.runner.drainMs} ms; 2 MCP clients in this process, a new session every 5 calls, until the replaced version stopped\n`);
    printPromotions(promotions, first);

    heading(`rollout: ${BREACHES} bad canaries (add throws) at ${BREACH_ROLLOUT.steps[0]}%, breaker: error rate > ${ROLLOUT.breaker.maxErrorRate} over ≥ ${ROLLOUT.breaker.minRequests} calls`);
    console.log('3 MCP clients in this process, a new session every 5 calls; the failed calls are the canary\'s own, before it was pulled\n');
    printBreaches(breaches);
  } finally {
    await cleanup();
  }
}

await main();
