/**
 * Benchmark (issue 3): how fast a save becomes a validation run, and what the pipeline adds on top
 * of the service's own lint + test + build.
 *
 * One real system (`startSystem`: Temporal dev server + FerretDB + worker + file watcher + API) on
 * free ports with a fresh state dir; one copy of examples/services/hello-world under its services
 * root. After a warm-up save (the service's first version, not counted), SAVES real content
 * changes are written one at a time, each waited for until its STAGED (or VALIDATION_FAILED) event.
 *
 *   save → VALIDATING   = VALIDATING event time − the moment the file was written
 *                         (includes the watcher's debounce, MCPSHIP_DEBOUNCE_MS, default 300 ms)
 *   pipeline overhead   = (STAGED time − write time) − Σ the service's own step durations
 *                         (VersionDoc.steps: lint, test, build, and install if it had one)
 *
 * Baseline, in the same run: the manifest's lint, test and build commands run directly with execa
 * in a copy of the service, so a reader sees the pipeline's wall time next to the direct one.
 *
 * Run: npx tsx bench/pipeline-latency.ts   (BENCH_SAVES=20, BENCH_BASELINE_RUNS=3)
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { startSystem, type System } from '../cli/system.ts';
import type { EventDoc } from '../core/documents.ts';
import { createLogger } from '../core/log.ts';
import {
  addSampleService,
  benchConfig,
  benchStateDir,
  copySample,
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
  type Summary,
} from './lib/common.ts';

const SAVES = Number(process.env.BENCH_SAVES ?? 20);
const BASELINE_RUNS = Number(process.env.BENCH_BASELINE_RUNS ?? 3);
const SERVICE = 'bench-hello';
/** Guards a hang only; a save normally takes a few seconds. */
const SAVE_GUARD_MS = 180_000;
const OUTCOMES = new Set(['STAGED', 'VALIDATION_FAILED']);
const STEP_KINDS = /^(INSTALL|LINT|TEST|BUILD)_(STARTED|COMPLETE|FAILED)$/;

interface SaveFigures {
  outcome: string;
  detectMs: number;
  wallMs: number;
  stepsMs: number;
  overheadMs: number;
  /** Parts of the overhead, read from the event times. */
  snapshotMs: number;
  betweenStepsMs: number;
  stageMs: number;
  reason?: string;
}

/** Resolves with the service's events after `afterSeq` up to and including its next outcome event. */
function eventsUntilOutcome(system: System, afterSeq: number): Promise<EventDoc[]> {
  return eventsUntil(system.events, { service: SERVICE, afterSeq, isEnd: (e) => OUTCOMES.has(e.kind), guardMs: SAVE_GUARD_MS, expected: 'STAGED / VALIDATION_FAILED' });
}

async function measureSave(system: System, file: string, content: string): Promise<SaveFigures> {
  const afterSeq = await system.events.lastSeq();
  const waiting = eventsUntilOutcome(system, afterSeq);
  await writeFile(file, content);
  const writtenAt = Date.now();
  const events = await waiting;

  const validating = events.find((e) => e.kind === 'VALIDATING');
  const outcome = events.at(-1)!;
  const stepEvents = events.filter((e) => STEP_KINDS.test(e.kind));
  const ends = stepEvents.filter((e) => !e.kind.endsWith('_STARTED'));

  // The service's own time: the staged version's step results; for a failed save, the step events.
  let stepsMs = ends.reduce((s, e) => s + (e.durationMs ?? 0), 0);
  if (outcome.kind === 'STAGED' && outcome.version) {
    const doc = await system.store.versions.findOne({ service: SERVICE, version: outcome.version });
    if (doc) stepsMs = doc.steps.reduce((s, step) => s + step.durationMs, 0);
  }

  // Between a step's end and the next one's start: activity scheduling and the event writes.
  let betweenStepsMs = 0;
  for (let i = 1; i < stepEvents.length; i++) {
    if (stepEvents[i]!.kind.endsWith('_STARTED') && !stepEvents[i - 1]!.kind.endsWith('_STARTED')) betweenStepsMs += eventTime(stepEvents[i]) - eventTime(stepEvents[i - 1]);
  }
  const wallMs = eventTime(outcome) - writtenAt;
  return {
    outcome: outcome.kind,
    detectMs: eventTime(validating) - writtenAt,
    wallMs,
    stepsMs,
    overheadMs: wallMs - stepsMs,
    snapshotMs: eventTime(stepEvents[0]) - eventTime(validating),
    betweenStepsMs,
    stageMs: eventTime(outcome) - eventTime(ends.at(-1)),
    ...(outcome.kind === 'VALIDATION_FAILED' ? { reason: eventReason(outcome) } : {}),
  };
}

/** The manifest's own commands, run directly in a plain copy of the service: what a developer would wait for without mcpship. */
async function baseline(stateDir: string): Promise<{ perStep: Record<string, number[]>; totals: number[] }> {
  const dir = path.join(stateDir, 'baseline', SERVICE);
  await copySample('hello-world', dir);
  const manifest = JSON.parse(await readFile(path.join(dir, 'mcp.json'), 'utf8')) as { steps: Record<string, { run: string }> };
  // The same environment the pipeline's steps get (activities/run-step.ts).
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', FORCE_COLOR: '0' };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const perStep: Record<string, number[]> = {};
  const totals: number[] = [];
  for (let run = 0; run < BASELINE_RUNS; run++) {
    let total = 0;
    for (const step of ['lint', 'test', 'build']) {
      const command = manifest.steps[step]?.run;
      if (!command) continue;
      const started = performance.now();
      const result = await execa(command, { shell: true, cwd: dir, env, extendEnv: false, reject: false, all: true });
      const ms = performance.now() - started;
      if (result.exitCode !== 0) throw new Error(`baseline ${step} failed (${command}):\n${result.all}`);
      (perStep[step] ??= []).push(ms);
      total += ms;
    }
    totals.push(total);
    console.error(`baseline run ${run + 1}/${BASELINE_RUNS}: ${fmtMs(total)}`);
  }
  return { perStep, totals };
}

const row = (label: string, s: Summary, target: string, ok: string) => [label, fmtMs(s.p50), fmtMs(s.p95), fmtMs(s.max), target, ok];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);

async function main(): Promise<void> {
  const machine = await machineLine();
  const stateDir = await benchStateDir('pipeline');
  const config = await benchConfig(stateDir);
  let system: System | undefined;
  const cleanup = onceCleanup(async () => {
    await system?.stop();
    await removeStateDir(stateDir);
  });
  try {
    console.error(`pipeline bench: state dir ${stateDir}; starting the system…`);
    system = await startSystem(config, createLogger('warn', 'bench'), { worker: true, api: true });

    // Warm-up: the service's first version (1.0.0), which also fills caches; not counted.
    const afterSeq = await system.events.lastSeq();
    const firstOutcome = eventsUntilOutcome(system, afterSeq);
    const dir = await addSampleService({ sample: 'hello-world', service: SERVICE, servicesDir: config.servicesDir, stateDir });
    const first = (await firstOutcome).at(-1)!;
    console.error(`warm-up save: ${first.kind} ${first.version ?? ''}`);

    const file = path.join(dir, 'src', 'bench-save.js');
    const saves: SaveFigures[] = [];
    for (let i = 1; i <= SAVES; i++) {
      const figures = await measureSave(system, file, `export const save = ${i};\n`);
      saves.push(figures);
      console.error(
        `save ${i}/${SAVES}: ${figures.outcome} — VALIDATING +${fmtMs(figures.detectMs)}, outcome +${fmtMs(figures.wallMs)} ` +
          `(steps ${fmtMs(figures.stepsMs)}, overhead ${fmtMs(figures.overheadMs)})${figures.reason ? ` — ${figures.reason}` : ''}`,
      );
    }

    // With the system still up and idle, so both sides see the same background (Temporal, FerretDB).
    const direct = await baseline(stateDir);

    const staged = saves.filter((s) => s.outcome === 'STAGED');
    const detect = summarize(saves.map((s) => s.detectMs));
    const overhead = summarize(staged.map((s) => s.overheadMs));
    const wall = summarize(staged.map((s) => s.wallMs));
    const steps = summarize(staged.map((s) => s.stepsMs));
    const directTotal = summarize(direct.totals);

    heading(`pipeline latency: ${SAVES} saves of a hello-world copy, debounce ${config.watcher.debounceMs} ms`);
    console.log(machine);
    console.log(`outcomes: ${staged.length} STAGED, ${saves.length - staged.length} VALIDATION_FAILED`);
    for (const s of saves.filter((x) => x.reason)) console.log(`  failed: ${s.reason}`);
    console.log();
    console.log(
      table(
        ['figure', 'p50', 'p95', 'max', 'target', 'p95 vs target'],
        [
          row('save → VALIDATING event', detect, '< 0.5 s', verdict(detect.p95 < 500)),
          row('pipeline overhead (wall − own steps)', overhead, '< 1 s', verdict(overhead.p95 < 1000)),
          row('pipeline wall: save → STAGED', wall, '', ''),
          row("  of which the service's lint+test+build", steps, '', ''),
          ['baseline: lint+test+build run directly', fmtMs(directTotal.p50), fmtMs(directTotal.p95), fmtMs(directTotal.max), `mean of ${direct.totals.length}: ${fmtMs(directTotal.mean)}`, ''],
        ],
      ),
    );
    console.log(`\npipeline wall p50 / direct mean: ${(wall.p50 / directTotal.mean).toFixed(2)}×  (${fmtMs(wall.p50)} vs ${fmtMs(directTotal.mean)})`);

    console.log('\nwhere the overhead goes (p50 over the staged saves):');
    console.log(
      table(
        ['part', 'p50', 'max'],
        [
          [`save → VALIDATING (incl. ${config.watcher.debounceMs} ms debounce)`, fmtMs(detect.p50), fmtMs(detect.max)],
          ['VALIDATING → first step started (snapshot)', fmtMs(summarize(staged.map((s) => s.snapshotMs)).p50), fmtMs(summarize(staged.map((s) => s.snapshotMs)).max)],
          ['between steps (step end → next step started)', fmtMs(summarize(staged.map((s) => s.betweenStepsMs)).p50), fmtMs(summarize(staged.map((s) => s.betweenStepsMs)).max)],
          ['last step end → STAGED (stage + record)', fmtMs(summarize(staged.map((s) => s.stageMs)).p50), fmtMs(summarize(staged.map((s) => s.stageMs)).max)],
        ],
      ),
    );

    // The same step inside the pipeline and run directly: a step slower inside is load, not overhead.
    const versions = (await system.store.versions.find({ service: SERVICE }).toArray()).filter((v) => v.version !== first.version);
    const inPipeline = (step: string) => versions.flatMap((v) => v.steps.filter((s) => s.step === step).map((s) => s.durationMs));
    console.log('\nstep durations, inside the pipeline vs run directly:');
    console.log(
      table(
        ['step', 'pipeline p50', 'direct mean'],
        ['lint', 'test', 'build'].map((step) => [step, fmtMs(summarize(inPipeline(step)).p50), fmtMs(mean(direct.perStep[step] ?? []))]),
      ),
    );
  } finally {
    await cleanup();
  }
}

await main();
