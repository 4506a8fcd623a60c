/**
 * Benchmark (issues 4 and 12): what the MCP gateway costs per call, with message capture on and
 * off, beside a plain express + http-proxy-middleware hop; and how fast a tripped circuit breaker
 * sends new sessions to the stable version.
 *
 * Set-up: the stack (startStack: Temporal dev server + FerretDB, or TEMPORAL_ADDRESS/MONGODB_URI),
 * the store, a built calculator (the sample) on a free port, registered as a ready InstanceDoc with
 * routing 100% to it.
 *
 * 1. Overhead: the same `tools/call add` load (BENCH_CALLS calls from BENCH_CLIENTS concurrent
 *    MCP sessions, after BENCH_WARMUP calls) straight to the instance, through a plain express +
 *    http-proxy-middleware hop (bench/lib/plain-hop.ts: the floor any such hop costs on this
 *    machine), through a bare node:http proxy (the same file: what Node's HTTP alone costs), and through two gateways as `mcpship up` runs them (startApi in
 *    bench/lib/gateway-process.ts: gateway + health monitors + breaker, capture on and
 *    MCPSHIP_CAPTURE=false); each proxy in a process of its own, so that its CPU per call is its
 *    own. BENCH_ROUNDS rounds in rotating order so that drift in the machine's load hits all paths
 *    alike. The load generator is a separate process (bench/lib/mcp-load.ts) and says over IPC
 *    where the measured calls start and end; CPU of every process is read exactly there. Then the
 *    same with one session calling one at a time (BENCH_SERIAL_CALLS), which shows the latency a
 *    hop adds without queueing for CPU. BENCH_GATEWAY_CPU_PROF=<dir>: V8 profiles of each proxy
 *    over the measured calls of each run (bench/lib/profile-summary.ts). BENCH_COMPARE_TREE=<another checkout>: its two
 *    gateways measured too, in the same rounds, for a before/after on a noisy machine.
 * 2. Breach → stable: a second service with two versions at 50/50, the canary a calculator copy
 *    whose `add` returns isError. Failing calls are driven into a canary session until the breaker
 *    trips; from that instant new sessions are opened back to back on the gateway that tripped and
 *    on the other one (which learns only through MongoDB), until new sessions land on stable.
 * 3. A stdio service (bench/lib/stdio-bench.ts): new-session latency and stateless calls through
 *    the stdio bridge, direct and through the capture-off gateway.
 * Sections 2 and 3 run two gateways in this process (the breaker's trip is watched from inside);
 * BENCH_OVERHEAD_ONLY=1 leaves them out (for before/after runs of the overhead alone).
 *
 * Run: npx tsx bench/gateway-overhead.ts
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ResultPromise } from 'execa';
import type { TripEvent } from '../api/gateway/breaker.ts';
import { startApi, type ApiHandle } from '../api/server.ts';
import { EventStore } from '../core/events.ts';
import { createLogger } from '../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../core/mongo.ts';
import { readRouting, setRouting } from '../core/routing-store.ts';
import { startStack, type Stack } from '../stack/start-stack.ts';
import {
  benchConfig,
  benchStateDir,
  childEnv,
  fmtDelta,
  fmtMs,
  heading,
  machineLine,
  onceCleanup,
  removeStateDir,
  repoRoot,
  summarize,
  table,
  verdict,
  type Summary,
} from './lib/common.ts';
import type { GatewayProcessArgs } from './lib/gateway-process.ts';
import type { LoadResult } from './lib/mcp-load.ts';
import type { PlainHopArgs } from './lib/plain-hop.ts';
import { ask, closeMeasured, forkMeasured } from './lib/measured-child.ts';
import { countSyscalls, type SyscallCounter } from './lib/syscall-count.ts';
import { addInstance, buildCalculator, processCpuMs, startCalculator } from './lib/calculator.ts';
import { stdioBench } from './lib/stdio-bench.ts';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SERIAL_CALLS = Number(process.env.BENCH_SERIAL_CALLS ?? 500);
/** A directory: V8 CPU profiles of each proxy over the measured calls of each run, a file per run. */
const CPU_PROF = process.env.BENCH_GATEWAY_CPU_PROF;
/** How long each proxy's CPU is sampled with no traffic before the load. */
const BACKGROUND_SAMPLE_MS = 5_000;
const BACKGROUND_SETTLE_MS = 3_000;
const OVERHEAD_ONLY = process.env.BENCH_OVERHEAD_ONLY === '1';
/** Another checkout of mcpship (with its node_modules): its gateways are measured beside this one's, in the same rounds (before/after). */
const COMPARE_TREE = process.env.BENCH_COMPARE_TREE;
/** Count each proxy's system calls over the measured calls (strace; it slows them: read no CPU or latency from such a run). */
const STRACE = process.env.BENCH_STRACE === '1';
/** New sessions are opened until this many in a row land on stable, or for PROBE_GUARD_MS. */
const SETTLED_AFTER = 20;
const PROBE_GUARD_MS = 5_000;
/** Canary sessions the failing calls come from, in turn. */
const CANARY_CLIENTS = 3;
/** How often MongoDB is read from the trip on to see the canary pulled. */
const SEEN_POLL_MS = 10;

const LOAD_SERVICE = 'calc';
const BREAKER_SERVICE = 'calc-canary';
const STDIO_SERVICE = 'stdio-fixture';
const STABLE = '1.0.0';
const CANARY = '2.0.0';

const log = createLogger('warn', 'bench');
const children: ResultPromise[] = [];

// ------------------------------------------------------------------------------------------
// The calculator instances

/** The canary: the same build, reporting version 2.0.0, whose `add` answers with isError (a tool result error, as a broken release would). */
async function brokenCanary(stableDir: string, stateDir: string): Promise<string> {
  const dir = path.join(stateDir, `calculator-${CANARY}`);
  await cp(stableDir, dir, { recursive: true });
  const file = path.join(dir, 'dist', 'server.js');
  const source = await readFile(file, 'utf8');
  const call = 'const r = calculate(op, a, b);';
  if (!source.includes(call) || !source.includes(`version: '${STABLE}'`)) throw new Error(`${file} changed shape; update the canary patch`);
  await writeFile(
    file,
    source
      .replace(`version: '${STABLE}'`, `version: '${CANARY}'`)
      .replace(call, "const r = op === 'add' ? { ok: /** @type {const} */ (false), error: 'canary: add is broken' } : calculate(op, a, b);"),
  );
  return dir;
}

// ------------------------------------------------------------------------------------------
// 1. Overhead

interface Shape {
  clients: number;
  calls: number;
  warmup: number;
}

/** One path the load is sent down: straight to the instance, or through a proxy in its own process. */
interface Target {
  label: string;
  url: string;
  /** The proxy's process (bench/lib/measured-child.ts); none for the direct path. */
  hop?: ChildProcess;
  /** Its CPU per second with no traffic (timers: routing refresh, metrics flushes, health), ms. */
  backgroundMsPerS?: number;
}

/** Processes whose CPU is counted besides the proxy's. */
interface Watched {
  instancePid: number;
  /** The embedded FerretDB, where capture and the session table write; undefined with an external MONGODB_URI. */
  mongoPid?: number;
}

interface RunFigures {
  load: LoadResult;
  /** CPU over the measured calls (warm-up and session set-up left out) of the proxy (NaN direct), the calculator and FerretDB. */
  hopCpuMs: number;
  instanceCpuMs: number;
  mongoCpuMs: number;
  /** With BENCH_STRACE=1: the proxy's system calls over the measured calls, by name. */
  syscalls?: Map<string, number>;
}

/** One load run (its own process); over IPC it says where the measured calls start and end, and CPU is read exactly there. */
function runLoad(target: Target, shape: Shape, watched: Watched, profileFile?: string): Promise<RunFigures> {
  const child = fork(path.join(repoRoot, 'bench', 'lib', 'mcp-load.ts'), [JSON.stringify({ url: target.url, ...shape })], {
    execArgv: ['--import', 'tsx'],
    cwd: repoRoot,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const read = async () => ({
    hop: target.hop ? (await ask(target.hop, 'stats', 'stats')).stats.cpuMs : Number.NaN,
    instance: await processCpuMs(watched.instancePid),
    mongo: watched.mongoPid ? await processCpuMs(watched.mongoPid) : Number.NaN,
  });
  let before: Awaited<ReturnType<typeof read>> | undefined;
  let counter: SyscallCounter | undefined;
  const figures: Omit<RunFigures, 'load'> = { hopCpuMs: Number.NaN, instanceCpuMs: Number.NaN, mongoCpuMs: Number.NaN };
  child.on('message', (m: { phase: 'calls-start' | 'calls-end' }) => {
    void (async () => {
      if (counter && m.phase === 'calls-end') figures.syscalls = await counter.stop();
      if (STRACE && target.hop?.pid && m.phase === 'calls-start') counter = await countSyscalls(target.hop.pid);
      if (profileFile && target.hop && m.phase === 'calls-end') target.hop.send(`profile-stop:${profileFile}`);
      const now = await read();
      if (profileFile && target.hop && m.phase === 'calls-start') target.hop.send('profile-start');
      if (m.phase === 'calls-start') before = now;
      else if (before) Object.assign(figures, { hopCpuMs: now.hop - before.hop, instanceCpuMs: now.instance - before.instance, mongoCpuMs: now.mongo - before.mongo });
      child.send('go');
    })();
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator failed on ${target.url}:\n${stderr}`));
      resolve({ load: JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult, ...figures });
    });
  });
}

interface PathFigures {
  target: Target;
  runs: RunFigures[];
}

async function overhead(targets: Target[], shape: Shape, watched: Watched): Promise<PathFigures[]> {
  const figures = targets.map((target) => ({ target, runs: [] as RunFigures[] }));
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < targets.length; k++) {
      // Rotated each round, and backwards every other round, so that no path always follows another.
      const n = targets.length;
      const i = (round % 2 === 0 ? k + round : n - 1 - k + round) % n;
      const profile = CPU_PROF && targets[i]!.hop ? path.join(CPU_PROF, `${slug(targets[i]!.label)}.${shape.clients}-sessions.round-${round + 1}.cpuprofile`) : undefined;
      const run = await runLoad(targets[i]!, shape, watched, profile);
      figures[i]!.runs.push(run);
      const { load } = run;
      console.error(
        `${shape.clients} client(s), round ${round + 1}/${ROUNDS}, ${targets[i]!.label}: ${(load.calls / (load.wallMs / 1000)).toFixed(0)} calls/s` +
          (run.hopCpuMs ? `, proxy CPU ${(run.hopCpuMs / load.calls).toFixed(3)} ms/call` : '') +
          `${load.errors ? `, ${load.errors} errors (${load.firstError})` : ''}`,
      );
    }
  }
  return figures;
}

const slug = (label: string) => label.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();

/** CPU per second of each proxy process with no traffic, sampled side by side. */
async function sampleBackground(targets: Target[]): Promise<void> {
  const hops = targets.filter((t) => t.hop);
  const cpu = () => Promise.all(hops.map(async (t) => (await ask(t.hop!, 'stats', 'stats')).stats.cpuMs));
  // Start-up (module compilation, first MongoDB reads) is over before the sample.
  await sleep(BACKGROUND_SETTLE_MS);
  const t0 = performance.now();
  const before = await cpu();
  await sleep(BACKGROUND_SAMPLE_MS);
  const after = await cpu();
  const seconds = (performance.now() - t0) / 1000;
  hops.forEach((t, i) => (t.backgroundMsPerS = (after[i]! - before[i]!) / seconds));
}

interface PathStats {
  label: string;
  throughput: number;
  perRound: string;
  latency: Summary;
  errors: number;
  /** ms per measured call, by process. */
  cpu: { client: number; hop: number; hopLessBackground: number; instance: number; mongo: number };
}

function pathStats(f: PathFigures): PathStats {
  const calls = f.runs.reduce((s, r) => s + r.load.calls, 0);
  const wallMs = f.runs.reduce((s, r) => s + r.load.wallMs, 0);
  const perCall = (cpu: (r: RunFigures) => number) => f.runs.reduce((s, r) => s + cpu(r), 0) / calls;
  const background = f.target.backgroundMsPerS ?? 0;
  return {
    label: f.target.label,
    throughput: calls / (wallMs / 1000),
    perRound: f.runs.map((r) => (r.load.calls / (r.load.wallMs / 1000)).toFixed(0)).join(' / '),
    latency: summarize(f.runs.flatMap((r) => r.load.latenciesMs)),
    errors: f.runs.reduce((s, r) => s + r.load.errors, 0),
    cpu: {
      client: perCall((r) => r.load.callsCpuMs),
      hop: perCall((r) => r.hopCpuMs),
      hopLessBackground: perCall((r) => r.hopCpuMs - background * (r.load.wallMs / 1000)),
      instance: perCall((r) => r.instanceCpuMs),
      mongo: perCall((r) => r.mongoCpuMs),
    },
  };
}

const ms3 = (ms: number) => (Number.isNaN(ms) ? '—' : ms.toFixed(3));

function printOverhead(figures: PathFigures[], shape: Shape): PathStats[] {
  // One call at a time, calls/s is only 1 / mean latency: the throughput target is for concurrent load.
  const judgeThroughput = shape.clients > 1;
  const stats = figures.map(pathStats);
  const direct = stats[0]!;
  console.log(
    table(
      ['path', 'calls/s', 'per round', '× direct', 'p50', 'p99', 'added p50', 'added p99', 'errors'],
      stats.map((s, i) => [
        s.label,
        s.throughput.toFixed(0),
        s.perRound,
        `${(s.throughput / direct.throughput).toFixed(2)}×`,
        fmtMs(s.latency.p50),
        fmtMs(s.latency.p99),
        i === 0 ? '' : fmtDelta(s.latency.p50 - direct.latency.p50),
        i === 0 ? '' : fmtDelta(s.latency.p99 - direct.latency.p99),
        String(s.errors),
      ]),
    ),
  );
  console.log('\nagainst the targets (issue 12; capture off: ≥ 0.97× throughput):');
  console.log(
    table(
      ['path', 'throughput ≥ 0.95× direct', 'added p50 ≤ 0.5 ms', 'added p99 ≤ 3 ms', 'proxy CPU/call ≤ 0.3 ms'],
      stats.slice(1).map((s) => {
        const ratio = s.throughput / direct.throughput;
        const p50 = s.latency.p50 - direct.latency.p50;
        const p99 = s.latency.p99 - direct.latency.p99;
        const throughput = judgeThroughput ? `${ratio.toFixed(2)}× ${verdict(ratio >= (/capture off/.test(s.label) ? 0.97 : 0.95))}` : `(${ratio.toFixed(2)}× = 1/latency)`;
        return [s.label, throughput, `${fmtDelta(p50)} ${verdict(p50 <= 0.5)}`, `${fmtDelta(p99)} ${verdict(p99 <= 3)}`, `${ms3(s.cpu.hop)} ms ${verdict(s.cpu.hop <= 0.3)}`];
      }),
    ),
  );
  // Where the CPU goes: on a small machine the proxy's CPU per call is taken from the client and the server.
  console.log('\nCPU time per measured call (ms), by process:');
  console.log(
    table(
      ['path', 'load generator', 'proxy process', 'less its idle background', 'calculator', 'FerretDB', 'sum'],
      stats.map((s) => {
        const sum = s.cpu.client + (Number.isNaN(s.cpu.hop) ? 0 : s.cpu.hop) + s.cpu.instance + (Number.isNaN(s.cpu.mongo) ? 0 : s.cpu.mongo);
        return [s.label, ms3(s.cpu.client), ms3(s.cpu.hop), ms3(s.cpu.hopLessBackground), ms3(s.cpu.instance), ms3(s.cpu.mongo), sum.toFixed(3)];
      }),
    ),
  );
  if (STRACE) printSyscalls(figures);
  return stats;
}

/** System calls per measured call of each proxy, the busiest by name. */
function printSyscalls(figures: PathFigures[]): void {
  const rows = figures
    .filter((f) => f.target.hop)
    .map((f) => {
      const calls = f.runs.reduce((s, r) => s + r.load.calls, 0);
      const sum = new Map<string, number>();
      for (const r of f.runs) for (const [name, n] of r.syscalls ?? []) sum.set(name, (sum.get(name) ?? 0) + n);
      return { label: f.target.label, calls, sum };
    });
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const names = [...new Set(rows.flatMap((r) => [...r.sum].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([n]) => n)))];
  console.log('\nsystem calls per measured call of the proxy process (strace -c, all threads):');
  console.log(table(['path', 'all', ...names], rows.map((r) => [r.label, (total(r.sum) / r.calls).toFixed(2), ...names.map((n) => ((r.sum.get(n) ?? 0) / r.calls).toFixed(2))])));
}

/** The paths side by side: how much of the gateway's cost is any express + http-proxy-middleware hop on this machine. */
function printSideBySide(loaded: PathStats[], serial: PathStats[], targets: Target[]): void {
  const direct = loaded[0]!;
  const plain = loaded[1]!;
  console.log(
    table(
      ['path', `calls/s (${CLIENTS} sessions)`, '× direct', 'added p50 (1 at a time)', 'added p99 (1 at a time)', 'proxy CPU/call', 'less background', 'CPU/call 1 at a time', '× plain hop', 'idle CPU/s', 'FerretDB CPU/call'],
      loaded.map((s, i) => {
        const one = serial[i]!;
        return [
          s.label,
          s.throughput.toFixed(0),
          `${(s.throughput / direct.throughput).toFixed(2)}×`,
          i === 0 ? '' : fmtDelta(one.latency.p50 - serial[0]!.latency.p50),
          i === 0 ? '' : fmtDelta(one.latency.p99 - serial[0]!.latency.p99),
          i === 0 ? '' : `${ms3(s.cpu.hop)} ms`,
          i === 0 ? '' : `${ms3(s.cpu.hopLessBackground)} ms`,
          i === 0 ? '' : `${ms3(one.cpu.hop)} ms`,
          i === 0 ? '' : `${(s.cpu.hop / plain.cpu.hop).toFixed(2)}×`,
          i === 0 ? '' : `${targets[i]!.backgroundMsPerS?.toFixed(1) ?? '—'} ms`,
          ms3(s.cpu.mongo),
        ];
      }),
    ),
  );
  console.log(
    `(proxy CPU: each proxy in a process of its own, process.cpuUsage() read around the measured calls; "less background" takes out its CPU per second with no traffic, ` +
      `sampled for ${BACKGROUND_SAMPLE_MS / 1000} s before the load. Plain hop: express + http-proxy-middleware with a keep-alive agent and nothing else; bare node:http proxy: one http.request per request, both ways piped — bench/lib/plain-hop.ts)`,
  );
}

// ------------------------------------------------------------------------------------------
// 2. Breach → first new session on stable

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'mcpship-bench-probe', version: '0' } },
});
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

interface Probe {
  /** ms after the trip. */
  sentMs: number;
  doneMs: number;
  version: string;
  sessionId?: string;
}

/** One new session by hand (initialize only): the version the gateway chose is in X-Mcpship-Version. */
async function newSession(url: string, t0: number): Promise<Probe> {
  const sentMs = performance.now() - t0;
  const res = await fetch(url, { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE });
  const version = res.headers.get('x-mcpship-version') ?? `HTTP ${res.status}`;
  const sessionId = res.headers.get('mcp-session-id') ?? undefined;
  await res.text();
  return { sentMs, doneMs: performance.now() - t0, version, ...(sessionId ? { sessionId } : {}) };
}

/** New sessions back to back from t0 until SETTLED_AFTER in a row are on stable. */
async function probeUntilStable(url: string, t0: number): Promise<Probe[]> {
  const probes: Probe[] = [];
  let inARow = 0;
  while (inARow < SETTLED_AFTER && performance.now() - t0 < PROBE_GUARD_MS) {
    const probe = await newSession(url, t0);
    probes.push(probe);
    inARow = probe.version === STABLE ? inARow + 1 : 0;
  }
  return probes;
}

interface Seen {
  /** ms after the trip (performance.now() of this process) when a read first saw it; NaN: not within PROBE_GUARD_MS. */
  pulledMs: number;
  eventMs: number;
}

/**
 * When the trip became visible to others: MongoDB read from the trip on until the routing lists the
 * canary as pulled and the BREAKER_OPEN event is there. Observed here, not the writer's own
 * timestamps (updatedAt, event time), which say when the gateway meant to write, not when a reader
 * could see it.
 */
async function watchPulled(store: Store, events: EventStore, t0: number): Promise<Seen> {
  const seen: Seen = { pulledMs: Number.NaN, eventMs: Number.NaN };
  while ((Number.isNaN(seen.pulledMs) || Number.isNaN(seen.eventMs)) && performance.now() - t0 < PROBE_GUARD_MS) {
    const [routing, opened] = await Promise.all([readRouting(store, BREAKER_SERVICE), events.list({ service: BREAKER_SERVICE, kind: 'BREAKER_OPEN' })]);
    const now = performance.now() - t0;
    if (Number.isNaN(seen.pulledMs) && routing.pulled.includes(CANARY)) seen.pulledMs = now;
    if (Number.isNaN(seen.eventMs) && opened.length) seen.eventMs = now;
    await sleep(SEEN_POLL_MS);
  }
  return seen;
}

/** Ends the probes' sessions (not timed), so the instances do not keep them. */
async function endSessions(url: string, probes: Probe[]): Promise<void> {
  for (const p of probes) {
    if (p.sessionId) await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': p.sessionId } }).then((r) => r.body?.cancel(), () => {});
  }
}

function describeProbes(probes: Probe[]) {
  const firstStable = probes.find((p) => p.version === STABLE);
  let lastOther = -1;
  probes.forEach((p, i) => p.version !== STABLE && (lastOther = i));
  const settled = probes.length - lastOther - 1 >= SETTLED_AFTER ? probes[lastOther + 1] : undefined;
  return {
    firstStableMs: firstStable?.doneMs ?? Number.NaN,
    settledMs: settled?.doneMs ?? Number.NaN,
    canaryAfterTrip: probes.filter((p) => p.version === CANARY).length,
    other: probes.filter((p) => p.version !== CANARY && p.version !== STABLE).map((p) => p.version),
    probes: probes.length,
  };
}

async function breachToStable(store: Store, events: EventStore, tripping: ApiHandle, other: ApiHandle): Promise<void> {
  await setRouting(store, BREAKER_SERVICE, { stable: STABLE, weights: { [STABLE]: 50, [CANARY]: 50 } });
  const urlA = `${tripping.url}/mcp/${BREAKER_SERVICE}`;
  const urlB = `${other.url}/mcp/${BREAKER_SERVICE}`;
  // Both gateways have the service in their routing cache before the trip, as under real traffic.
  for (const url of [urlA, urlB]) await endSessions(url, [await newSession(url, performance.now())]);

  // From the trip on, new sessions are opened at once on both gateways: started inside the
  // breaker's own trip callback, so no polling delay sits between the trip and the first probe.
  let t0 = Number.NaN;
  let trip: TripEvent | undefined;
  let probing: Promise<[Probe[], Probe[]]> | undefined;
  let seen: Promise<Seen> | undefined;
  const off = tripping.traffic.breaker.onTrip((event) => {
    if (event.service !== BREAKER_SERVICE || trip) return;
    t0 = performance.now();
    trip = event;
    probing = Promise.all([probeUntilStable(urlA, t0), probeUntilStable(urlB, t0)]);
    seen = watchPulled(store, events, t0);
  });

  // Canary sessions (forced with X-Mcpship-Version; no admin token is configured) fed failing calls
  // in turn: several clients, since a breach must hold without the client with the most failures.
  const clients: Client[] = [];
  for (let i = 0; i < CANARY_CLIENTS; i++) {
    const transport = new StreamableHTTPClientTransport(new URL(urlA), { requestInit: { headers: { 'x-mcpship-version': CANARY } } });
    const client = new Client({ name: `mcpship-bench-canary-${i}`, version: '0' });
    client.onerror = () => {};
    await client.connect(transport);
    if (client.getServerVersion()?.version !== CANARY) throw new Error(`the forced session landed on ${client.getServerVersion()?.version}, not the canary`);
    clients.push(client);
  }
  let failingCalls = 0;
  calls: while (!trip && failingCalls < 200) {
    for (const client of clients) {
      try {
        const result = await client.callTool({ name: 'add', arguments: { a: 1, b: 1 } });
        if (result.isError) failingCalls++;
      } catch {
        break calls; // the session was refused (404) once the canary was pulled
      }
      if (trip) break;
    }
  }
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  off();
  if (!trip || !probing) {
    console.log(`the breaker did not trip after ${failingCalls} failing calls; nothing to measure`);
    return;
  }
  const [probesA, probesB] = await probing;

  const { pulledMs, eventMs } = await seen!;
  await Promise.all([endSessions(urlA, probesA), endSessions(urlB, probesB)]);

  const a = describeProbes(probesA);
  const b = describeProbes(probesB);
  console.log(`canary ${CANARY}: add returns isError; weights ${STABLE} 50 / ${CANARY} 50; the breaker tripped after ${failingCalls} failing calls from ${CANARY_CLIENTS} sessions (${trip.reasons.join('; ')})`);
  console.log(`trip → canary seen pulled in MongoDB: ${fmtMs(pulledMs)}; trip → BREAKER_OPEN event seen: ${fmtMs(eventMs)} (read every ${SEEN_POLL_MS} ms)\n`);
  console.log(
    table(
      ['new sessions opened from the trip on', 'first on stable', `all on stable from (${SETTLED_AFTER} in a row)`, 'on canary after trip', 'probes', 'target < 1 s'],
      [
        ['gateway whose breaker tripped', fmtMs(a.firstStableMs), fmtMs(a.settledMs), String(a.canaryAfterTrip), String(a.probes), verdict(a.settledMs < 1000)],
        ['another gateway (learns via MongoDB)', fmtMs(b.firstStableMs), fmtMs(b.settledMs), String(b.canaryAfterTrip), String(b.probes), verdict(b.settledMs < 1000)],
      ],
    ),
  );
  for (const [name, d] of [['tripping gateway', a], ['other gateway', b]] as const) {
    if (d.other.length) console.log(`  ${name}: probes answered without a version: ${[...new Set(d.other)].join(', ')}`);
  }
  console.log(
    `(times are from the trip to the probe's answer; at 50/50 a single new session lands on stable by chance half the time, ` +
      `so "all on stable from" is the figure that shows the breaker at work; "—" there: not ${SETTLED_AFTER} in a row within ${PROBE_GUARD_MS / 1000} s)`,
  );
}

/**
 * Did capture store every message that passed the capture-on gateways (with BENCH_COMPARE_TREE,
 * two of them on one database), both ways? The load generator counts what its clients sent and
 * received (initialize, notifications, calls, responses, SSE events); the writers' own counters
 * say what they spilled, quarantined or dropped.
 */
async function captureCheck(store: Store, on: ChildProcess[], runs: PathFigures[]): Promise<void> {
  const sent = runs.flatMap((f) => f.runs).reduce((s, r) => s + r.load.messages.sent, 0);
  const received = runs.flatMap((f) => f.runs).reduce((s, r) => s + r.load.messages.received, 0);
  const c = { captured: 0, written: 0, spilled: 0, replayed: 0, quarantined: 0, dropped: 0 };
  for (const gateway of on) {
    const { counters } = await ask(gateway, 'flush', 'flushed');
    if (!counters) throw new Error('a capture-on gateway has no capture writer');
    for (const key of Object.keys(c) as (keyof typeof c)[]) c[key] += counters[key];
  }
  const count = (filter: Record<string, string>) => store.messages.countDocuments({ service: LOAD_SERVICE, ...filter });
  const rows: string[][] = [];
  for (const direction of ['client_to_server', 'server_to_client']) {
    for (const kind of ['request', 'notification', 'response', 'error']) {
      const n = await count({ direction, kind });
      if (n > 0) rows.push([direction, kind, String(n)]);
    }
  }
  const storedSent = await count({ direction: 'client_to_server' });
  const storedReceived = await count({ direction: 'server_to_client' });
  heading('capture check: every message through the capture-on gateway(s), both ways');
  console.log(table(['direction', 'kind', 'stored'], rows));
  console.log(
    `\nclient → server: ${storedSent} stored of ${sent} the clients sent; server → client: ${storedReceived} stored of ${received} the clients received` +
      `\nwriter: captured ${c.captured}, written ${c.written}, spilled ${c.spilled}, replayed ${c.replayed}, quarantined ${c.quarantined}, dropped ${c.dropped}`,
  );
  console.log(`capture lost nothing: ${verdict(storedSent === sent && storedReceived === received && c.dropped === 0)}`);
}

// ------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const machine = await machineLine();
  const stateDir = await benchStateDir('gateway');
  const config = await benchConfig(stateDir);
  // The second gateway: the same settings with MCPSHIP_CAPTURE=false.
  const configOff = await benchConfig(stateDir, { MCPSHIP_CAPTURE: 'false' });
  let stack: Stack | undefined;
  let store: Store | undefined;
  const apis: ApiHandle[] = [];
  const hops: ChildProcess[] = [];
  const cleanup = onceCleanup(async () => {
    await Promise.all(hops.map(closeMeasured));
    for (const api of apis) await api.close().catch(() => {});
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.allSettled(children);
    if (store) {
      // Our own database; with an external MONGODB_URI it would otherwise stay behind.
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
    await stack?.stop();
    await removeStateDir(stateDir);
  });
  try {
    console.error(`gateway bench: state dir ${stateDir}; starting the stack and building the calculator…`);
    const [started, stableDir] = await Promise.all([startStack(config, log), buildCalculator(stateDir, STABLE)]);
    stack = started;
    store = await connectStore(stack.mongoUri, config.mongo.database);
    await ensureIndexes(store);
    const events = new EventStore(store);

    const canaryDir = await brokenCanary(stableDir, stateDir);
    const [stable, canary] = await Promise.all([startCalculator(stableDir, children), startCalculator(canaryDir, children)]);
    await addInstance(store, LOAD_SERVICE, STABLE, 'calc-1', stable.url);
    await setRouting(store, LOAD_SERVICE, { stable: STABLE, weights: { [STABLE]: 100 } });
    await addInstance(store, BREAKER_SERVICE, STABLE, 'canary-svc-stable', stable.url);
    await addInstance(store, BREAKER_SERVICE, CANARY, 'canary-svc-canary', canary.url);

    // 1. Each proxy in a process of its own (as `mcpship up` runs the gateway), so that the CPU per
    // call of each is its own: the plain hop, and the gateway with capture on and off. Ports of
    // their own (the in-process gateways of 2 and 3 take the configs' ports later).
    const gatewayArgs = async (env: Record<string, string>): Promise<GatewayProcessArgs> => ({
      config: await benchConfig(stateDir, env),
      mongoUri: stack!.mongoUri,
      temporalAddress: stack!.temporalAddress,
    });
    const gateways: { label: string; env: Record<string, string>; root?: string }[] = [
      { label: 'gateway, capture off', env: { MCPSHIP_CAPTURE: 'false' } },
      { label: 'gateway, capture on', env: {} },
      ...(COMPARE_TREE
        ? [
            { label: `gateway, capture off, ${path.basename(COMPARE_TREE)}`, env: { MCPSHIP_CAPTURE: 'false' }, root: COMPARE_TREE },
            { label: `gateway, capture on, ${path.basename(COMPARE_TREE)}`, env: {}, root: COMPARE_TREE },
          ]
        : []),
    ];
    const plainHop = forkMeasured('plain-hop.ts', { target: stable.url, kind: 'express-hpm' } satisfies PlainHopArgs);
    const nodeHop = forkMeasured('plain-hop.ts', { target: stable.url, kind: 'node' } satisfies PlainHopArgs);
    hops.push(plainHop, nodeHop);
    const targets: Target[] = [
      { label: 'direct to the instance', url: stable.url },
      { label: 'plain express + http-proxy-middleware hop', url: (await ask(plainHop, '', 'ready')).url, hop: plainHop },
      { label: 'bare node:http proxy', url: (await ask(nodeHop, '', 'ready')).url, hop: nodeHop },
    ];
    for (const g of gateways) {
      const hop = forkMeasured('gateway-process.ts', await gatewayArgs(g.env), g.root);
      hops.push(hop);
      targets.push({ label: g.label, url: `${(await ask(hop, '', 'ready')).url}/mcp/${LOAD_SERVICE}`, hop });
    }
    const captureOn = targets.filter((t) => gateways.some((g) => g.label === t.label && !g.env.MCPSHIP_CAPTURE)).map((t) => t.hop!);
    const concurrent: Shape = { clients: CLIENTS, calls: CALLS, warmup: WARMUP };
    // One client, one call at a time: the latency a hop adds without any queueing for CPU.
    const serial: Shape = { clients: 1, calls: SERIAL_CALLS, warmup: Math.min(WARMUP, SERIAL_CALLS) };
    const mongoPid = stack.processes.find((p) => p.name === 'ferretdb')?.pid;
    const watched: Watched = { instancePid: stable.pid, ...(mongoPid ? { mongoPid } : {}) };
    if (CPU_PROF) await mkdir(CPU_PROF, { recursive: true });
    await sampleBackground(targets);
    const loaded = await overhead(targets, concurrent, watched);
    const unloaded = await overhead(targets, serial, watched);

    heading(`gateway overhead: tools/call add, ${CALLS} calls × ${ROUNDS} rounds per path, ${CLIENTS} concurrent MCP sessions`);
    console.log(machine);
    console.log('load generator, each proxy and the calculator in their own processes; latencies pooled over the rounds, CPU over the measured calls only\n');
    const loadedStats = printOverhead(loaded, concurrent);
    heading(`the same, one MCP session calling one at a time (${SERIAL_CALLS} calls × ${ROUNDS} rounds per path)`);
    const serialStats = printOverhead(unloaded, serial);
    heading('side by side: direct, a plain http-proxy-middleware hop, a bare node:http proxy, the gateway');
    printSideBySide(loadedStats, serialStats, targets);
    console.log(`${new Date().toISOString()}: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min) at the end of the overhead runs`);

    await captureCheck(store, captureOn, [...loaded, ...unloaded].filter((f) => captureOn.includes(f.target.hop!)));
    await Promise.all(hops.splice(0).map(closeMeasured));
    if (OVERHEAD_ONLY) return;

    // 2 and 3 watch the gateway from inside (the breaker's trip callback): two gateways in this process.
    const deps = { store, events, log, temporalAddress: stack.temporalAddress };
    const on = await startApi({ ...deps, config });
    apis.push(on);
    const off = await startApi({ ...deps, config: configOff });
    apis.push(off);
    if (off.traffic.capture || !on.traffic.capture) throw new Error('capture settings of the two gateways are not as meant');

    heading('breach → first new session routed to stable');
    await breachToStable(store, events, on, off);

    // A stdio service (issue 8): new-session cost and stateless calls, direct and through the capture-off gateway.
    heading('stdio service: new sessions and stateless calls');
    await stdioBench(async (bridgeUrl) => {
      await addInstance(store!, STDIO_SERVICE, STABLE, 'stdio-1', bridgeUrl);
      await setRouting(store!, STDIO_SERVICE, { stable: STABLE, weights: { [STABLE]: 100 } });
      return `${off.url}/mcp/${STDIO_SERVICE}`;
    });
  } finally {
    await cleanup();
  }
}

await main();
