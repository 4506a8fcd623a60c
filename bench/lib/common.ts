/**
 * Shared bits of the benchmarks: a throw-away state dir inside the checkout, a config on free
 * ports, percentiles and plain-text tables. Benchmarks print figures; they never assert.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type Config } from '../../core/config.ts';
import type { EventDoc } from '../../core/documents.ts';
import type { EventStore } from '../../core/events.ts';
import { setTreeWritable } from '../../core/read-only.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';

export { repoRoot };

/**
 * A fresh state dir inside the checkout (`.mcpship/bench-<name>-<id>`), so that validation
 * commands run in snapshots under it resolve typescript and the MCP SDK from the checkout's
 * node_modules, as `npm start` does.
 */
export async function benchStateDir(name: string): Promise<string> {
  const dir = path.join(repoRoot, '.mcpship', `bench-${name}-${randomUUID().slice(0, 8)}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Removes a state dir; staged and archived versions are read-only, so they are made writable first. */
export async function removeStateDir(dir: string): Promise<void> {
  await setTreeWritable(dir, true).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}

/**
 * A config of its own: free ports for every embedded piece, a unique database and task queue (so
 * an external TEMPORAL_ADDRESS / MONGODB_URI, when set, is shared safely), logs at warn.
 * Goes through loadConfig like `mcpship up`, so env names mean what they mean there.
 */
export async function benchConfig(stateDir: string, env: Record<string, string> = {}): Promise<Config> {
  const id = path.basename(stateDir).split('-').pop()!;
  const passThrough: Record<string, string> = {};
  for (const name of ['TEMPORAL_ADDRESS', 'MONGODB_URI', 'MCPSHIP_DEBOUNCE_MS']) {
    const value = process.env[name];
    if (value) passThrough[name] = value;
  }
  return loadConfig(
    {
      MCPSHIP_STATE_DIR: stateDir,
      MCPSHIP_SERVICES_DIR: path.join(stateDir, 'services'),
      MCPSHIP_TEMPORAL_PORT: String(await freePort()),
      MCPSHIP_TEMPORAL_UI_PORT: String(await freePort()),
      MCPSHIP_MONGO_PORT: String(await freePort()),
      MCPSHIP_API_PORT: String(await freePort()),
      MCPSHIP_MONGO_DATABASE: `bench_${id}`,
      MCPSHIP_TASK_QUEUE: `bench-${id}`,
      MCPSHIP_LOG_LEVEL: 'warn',
      ...passThrough,
      ...env,
    },
    repoRoot,
  ).config;
}

export { childEnv } from '../../test/support/child-env.ts';

/**
 * Runs `cleanup` once, whether the benchmark ends, throws, or is interrupted (Ctrl-C), so no
 * Temporal / FerretDB / calculator process and no state dir is left behind.
 */
export function onceCleanup(cleanup: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = () => (done ??= cleanup().catch((err: unknown) => console.error('cleanup failed:', err)));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void run().finally(() => process.exit(130));
    });
  }
  return run;
}

// ------------------------------------------------------------------------------------------
// Sample services and their events

export { addSampleService, copySample, type AddServiceOptions } from '../../test/support/sample-service.ts';

export interface EventsUntilOptions {
  service: string;
  afterSeq: number;
  /** The event that ends the wait; it is the last one returned. */
  isEnd: (event: EventDoc) => boolean;
  /** Guards a hang only: the promise rejects after this long without an end event. */
  guardMs: number;
  /** What the guard's error says was not seen, e.g. "end event". */
  expected: string;
  /** How each event seen is listed in the guard's error; its kind unless told. */
  describe?: (event: EventDoc) => string;
}

/** Resolves with the service's events after `afterSeq` up to and including the first one `isEnd` accepts. */
export function eventsUntil(events: EventStore, opts: EventsUntilOptions): Promise<EventDoc[]> {
  const describe = opts.describe ?? ((e: EventDoc) => e.kind);
  return new Promise((resolve, reject) => {
    const seen: EventDoc[] = [];
    const guard = setTimeout(() => {
      stop();
      reject(new Error(`no ${opts.expected} within ${opts.guardMs / 1000} s; events seen: ${seen.map(describe).join(' ')}`));
    }, opts.guardMs);
    // follow() is woken by appends in this process (the benchmarks run the worker here), so no poll delay is added.
    const stop = events.follow({ service: opts.service }, opts.afterSeq, (event) => {
      seen.push(event);
      if (opts.isEnd(event)) {
        clearTimeout(guard);
        stop();
        resolve(seen);
      }
    }, 50);
  });
}

/** An event's time in ms since the epoch; NaN for no event. */
export function eventTime(e: EventDoc | undefined): number {
  return e ? new Date(e.time).getTime() : Number.NaN;
}

/** The `details.reason` of an event (a failure's or an abort's), or ''. */
export function eventReason(e: EventDoc | undefined): string {
  return String((e?.details as { reason?: string } | undefined)?.reason ?? '');
}

// ------------------------------------------------------------------------------------------
// Figures

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1);
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, mean };
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Milliseconds as people read them: "0.42 ms", "37 ms", "1.24 s". */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  if (abs >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (abs >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A signed difference: "+0.31 ms". */
export function fmtDelta(ms: number): string {
  return `${ms >= 0 ? '+' : '−'}${fmtMs(Math.abs(ms))}`;
}

/** A plain-text table, columns padded; numbers right-aligned (anything starting with a digit, sign or '<'). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (s: string) => /^[-+−<≥≤~]?\s?\d/.test(s);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i > 0 && numeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** "ok" or "MISSED" against a target, for a reader scanning the table (never an assertion). */
export function verdict(ok: boolean): string {
  return ok ? 'ok' : 'MISSED';
}

export function heading(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 90 - title.length))}`);
}

/** What the figures were measured on: the load of other work matters on a small machine. */
export async function machineLine(): Promise<string> {
  const os = await import('node:os');
  const [one, five] = os.loadavg();
  return `node ${process.version}, ${os.cpus().length} cores, load average ${one!.toFixed(2)} (1 min) / ${five!.toFixed(2)} (5 min) at start`;
}
