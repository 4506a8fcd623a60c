/**
 * Benchmark (issue 12): how the gateway's cost grows with the number of sessions. The gateway
 * (startApi with capture on, as `mcpship up` runs it) runs in a process of its own
 * (bench/lib/gateway-process.ts), so its CPU time per call is process.cpuUsage() of that process
 * alone, read over the measured calls only (session set-up and warm-up left out): a figure far less
 * sensitive to a loaded machine than throughput or latency.
 *
 * 1. Concurrent sessions: for each of BENCH_SCALE_SESSIONS (10, 100, 1000) real MCP sessions
 *    (bench/lib/mcp-load.ts, its own process), BENCH_SCALE_CALLS `tools/call add` calls, straight to
 *    the calculator and through the gateway, one after the other: calls/s and p99 of both and their
 *    ratios, the gateway's CPU per call and its memory.
 * 2. Idle sessions: BENCH_IDLE_SESSIONS (10,000) sessions opened through the gateway (initialize
 *    only) and held open; the gateway's memory per idle session, then the 10-session load again
 *    with them held.
 * 3. Capture storage: bytes per 1,000 stored messages (the BSON of the documents, and the
 *    database's own collStats where it has them).
 *
 * Run: npx tsx bench/gateway-scale.ts   (or npm run bench -- scale); knobs: BENCH_SCALE_CALLS,
 * BENCH_SCALE_SESSIONS, BENCH_IDLE_SESSIONS, BENCH_GATEWAY_CPU_PROF.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type ResultPromise } from 'execa';
import { BSON } from 'mongodb';
import { createLogger } from '../core/log.ts';
import { connectStore, ensureIndexes, type Store } from '../core/mongo.ts';
import { setRouting } from '../core/routing-store.ts';
import { startStack, type Stack } from '../stack/start-stack.ts';
import { addInstance, buildCalculator, processCpuMs, startCalculator } from './lib/calculator.ts';
import { benchConfig, benchStateDir, childEnv, fmtMs, heading, machineLine, onceCleanup, removeStateDir, repoRoot, summarize, table } from './lib/common.ts';
import type { GatewayProcessArgs, GatewayStats } from './lib/gateway-process.ts';
import { ask } from './lib/measured-child.ts';
import type { LoadResult } from './lib/mcp-load.ts';

const CALLS = Number(process.env.BENCH_SCALE_CALLS ?? 2000);
const LEVELS = (process.env.BENCH_SCALE_SESSIONS ?? '10,100,1000').split(',').map(Number);
const IDLE = Number(process.env.BENCH_IDLE_SESSIONS ?? 10_000);
/** Initializes in flight at once while the idle sessions are opened. */
const IDLE_OPENERS = 32;
const SERVICE = 'calc';
/** Breaker thresholds that never trip: never enough requests to judge, and no rate or p99 above them. */
const BREAKER_OFF = { minRequests: Number.MAX_SAFE_INTEGER, maxErrorRate: 1, maxP99Ms: Number.MAX_SAFE_INTEGER };
const VERSION = '1.0.0';
const MB = 1024 * 1024;
/** How long the idle gateway's CPU is sampled before any load. */
const BACKGROUND_SAMPLE_MS = 10_000;

const log = createLogger('warn', 'bench');
const children: ResultPromise[] = [];

interface Measured {
  load: LoadResult;
  /** The gateway's CPU over the measured calls; NaN for a direct run. */
  gatewayCpuMs: number;
  instanceCpuMs: number;
  /** The MongoDB-wire server's CPU over the measured calls (capture's inserts, mostly); NaN when it is not ours. */
  dbCpuMs: number;
  /** The gateway's memory when the calls ended. */
  gatewayMem?: GatewayStats;
}

/** One load run (its own process, over IPC so that CPU is read exactly around the measured calls). */
function runLoad(url: string, clients: number, instancePid: number, dbPid: number | undefined, gateway?: ChildProcess): Promise<Measured> {
  const warmup = Math.max(200, clients);
  const child = fork(path.join(repoRoot, 'bench', 'lib', 'mcp-load.ts'), [JSON.stringify({ url, clients, calls: CALLS, warmup })], {
    execArgv: ['--import', 'tsx'],
    cwd: repoRoot,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  let before: { gateway: number; instance: number; db: number } | undefined;
  const figures: Omit<Measured, 'load'> = { gatewayCpuMs: Number.NaN, instanceCpuMs: Number.NaN, dbCpuMs: Number.NaN };
  child.on('message', (m: { phase: 'calls-start' | 'calls-end' }) => {
    void (async () => {
      const gatewayStats = gateway ? (await ask(gateway, 'stats', 'stats')).stats : undefined;
      const instance = await processCpuMs(instancePid);
      const db = dbPid === undefined ? Number.NaN : await processCpuMs(dbPid);
      if (m.phase === 'calls-start') before = { gateway: gatewayStats?.cpuMs ?? Number.NaN, instance, db };
      else if (before) {
        figures.gatewayCpuMs = (gatewayStats?.cpuMs ?? Number.NaN) - before.gateway;
        figures.instanceCpuMs = instance - before.instance;
        figures.dbCpuMs = db - before.db;
        if (gatewayStats) figures.gatewayMem = gatewayStats;
      }
      child.send('go');
    })();
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator failed on ${url} (${clients} sessions):\n${stderr}`));
      resolve({ load: JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadResult, ...figures });
    });
  });
}

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const initialize = (i: number) =>
  JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: `mcpship-bench-idle-${i}`, version: '0' } } });

interface IdleOpen {
  opened: number;
  failed: number;
  firstError?: string;
  /** Set when opening stopped before `count`: the machine's limit, said in the figures. */
  stoppedBecause?: string;
}

/** Failures in a row after which the gateway (or the machine) is taken to be at its limit. */
const IDLE_GIVE_UP_AFTER = 200;

/**
 * Opens `count` sessions (initialize only) and leaves them open. Every failure is counted and the
 * first one kept; a long run of them ends the phase early with its reason rather than the bench.
 */
async function openIdleSessions(url: string, count: number): Promise<IdleOpen> {
  let next = 0;
  const result: IdleOpen = { opened: 0, failed: 0 };
  let failedInARow = 0;
  const t0 = performance.now();
  const fail = (why: string) => {
    result.failed++;
    result.firstError ??= why;
    if (++failedInARow >= IDLE_GIVE_UP_AFTER) result.stoppedBecause ??= `${IDLE_GIVE_UP_AFTER} initializes failed in a row, the last: ${why}`;
  };
  await Promise.all(
    Array.from({ length: IDLE_OPENERS }, async () => {
      while (next < count && !result.stoppedBecause) {
        const i = next++;
        try {
          const res = await fetch(url, { method: 'POST', headers: MCP_HEADERS, body: initialize(i) });
          const body = await res.text();
          if (res.ok && res.headers.get('mcp-session-id')) {
            result.opened++;
            failedInARow = 0;
          } else fail(`HTTP ${res.status}: ${body.slice(0, 200)}`);
        } catch (err) {
          fail(String((err as Error & { cause?: unknown }).cause ?? err));
        }
        if (i > 0 && i % 1000 === 0) console.error(`  ${result.opened} idle sessions open, ${result.failed} failed, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
    }),
  );
  return result;
}

/** Bytes per 1,000 captured messages: BSON of every stored document, and collStats where the database has it. */
async function captureBytes(store: Store): Promise<{ messages: number; bsonPer1000: number; collStats?: { sizePer1000: number; storagePer1000: number; indexesPer1000: number } }> {
  let messages = 0;
  let bson = 0;
  for await (const doc of store.messages.find({ service: SERVICE })) {
    messages++;
    bson += BSON.calculateObjectSize(doc);
  }
  const per1000 = (bytes: number, count: number) => (count > 0 ? (bytes / count) * 1000 : Number.NaN);
  const stats = (await store.db.command({ collStats: store.messages.collectionName }).catch(() => undefined)) as
    | { count?: number; size?: number; storageSize?: number; totalIndexSize?: number }
    | undefined;
  const all = Number(stats?.count);
  return {
    messages,
    bsonPer1000: per1000(bson, messages),
    ...(stats && all > 0
      ? { collStats: { sizePer1000: per1000(Number(stats.size), all), storagePer1000: per1000(Number(stats.storageSize), all), indexesPer1000: per1000(Number(stats.totalIndexSize), all) } }
      : {}),
  };
}

const rate = (r: Measured) => r.load.calls / (r.load.wallMs / 1000);
const perCall = (r: Measured, cpu: number) => cpu / r.load.calls;
const mb = (bytes: number | undefined) => (bytes === undefined ? '—' : `${(bytes / MB).toFixed(0)} MB`);

async function main(): Promise<void> {
  const machine = await machineLine();
  const stateDir = await benchStateDir('scale');
  const config = await benchConfig(stateDir);
  let stack: Stack | undefined;
  let store: Store | undefined;
  let gateway: ChildProcess | undefined;
  const cleanup = onceCleanup(async () => {
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway!.once('exit', resolve));
      gateway.send('close');
      await exited;
    }
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.allSettled(children);
    if (store) {
      await store.db.dropDatabase().catch(() => {});
      await store.close();
    }
    await stack?.stop();
    await removeStateDir(stateDir);
  });
  try {
    console.error(`gateway scale bench: state dir ${stateDir}; starting the stack and building the calculator…`);
    const [started, dir] = await Promise.all([startStack(config, log), buildCalculator(stateDir, VERSION)]);
    stack = started;
    store = await connectStore(stack.mongoUri, config.mongo.database);
    await ensureIndexes(store);
    const calculator = await startCalculator(dir, children);
    const dbPid = stack.processes.find((p) => p.name === 'ferretdb')?.pid;
    await addInstance(store, SERVICE, VERSION, 'calc-1', calculator.url);
    // The breaker stays out of the measurement: at 1,000 sessions on a shared 2-core machine the
    // calculator's p99 and timeouts are the load's, not a bad version's, and an open breaker turns
    // every later row into 503s. Thresholds it can never judge on (set before the gateway starts,
    // which reads them with the routing).
    await setRouting(store, SERVICE, { stable: VERSION, weights: { [VERSION]: 100 }, breaker: BREAKER_OFF });

    const args: GatewayProcessArgs = { config, mongoUri: stack.mongoUri, temporalAddress: stack.temporalAddress };
    gateway = fork(path.join(repoRoot, 'bench', 'lib', 'gateway-process.ts'), [JSON.stringify(args)], {
      // BENCH_GATEWAY_CPU_PROF=<dir>: a V8 CPU profile of the gateway alone (bench/lib/profile-summary.ts reads it).
      execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_GATEWAY_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_GATEWAY_CPU_PROF}`] : [])],
      cwd: repoRoot,
      env: childEnv(),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const { url: apiUrl } = await ask(gateway, '', 'ready');
    const gatewayUrl = `${apiUrl}/mcp/${SERVICE}`;
    const idleBaseline = (await ask(gateway, 'gc-stats', 'stats')).stats;
    // What the gateway spends with no traffic at all (routing refresh, metrics flushes, health
    // monitors): a cost per second, which at a low call rate would otherwise pass for a cost per call.
    const bgStart = (await ask(gateway, 'stats', 'stats')).stats.cpuMs;
    const bgT0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, BACKGROUND_SAMPLE_MS));
    const backgroundMsPerS = (((await ask(gateway, 'stats', 'stats')).stats.cpuMs - bgStart) / (performance.now() - bgT0)) * 1000;

    const rows: { sessions: string; direct: Measured; through: Measured }[] = [];
    for (const sessions of LEVELS) {
      const direct = await runLoad(calculator.url, sessions, calculator.pid, dbPid);
      const through = await runLoad(gatewayUrl, sessions, calculator.pid, dbPid, gateway);
      console.error(`${sessions} sessions: direct ${rate(direct).toFixed(0)} calls/s, gateway ${rate(through).toFixed(0)} calls/s, gateway CPU ${perCall(through, through.gatewayCpuMs).toFixed(3)} ms/call`);
      rows.push({ sessions: String(sessions), direct, through });
    }

    let idle: (IdleOpen & { before: GatewayStats; after: GatewayStats; openMs: number; loadError?: string }) | undefined;
    if (IDLE > 0) {
      console.error(`opening ${IDLE} idle sessions through the gateway…`);
      const before = (await ask(gateway, 'gc-stats', 'stats')).stats;
      const t0 = performance.now();
      const opened = await openIdleSessions(gatewayUrl, IDLE);
      const openMs = performance.now() - t0;
      const after = (await ask(gateway, 'gc-stats', 'stats')).stats;
      idle = { ...opened, before, after, openMs };
      console.error(`idle sessions: ${opened.opened} open, ${opened.failed} failed; gateway heap ${mb(before.heapUsedBytes)} → ${mb(after.heapUsedBytes)}, RSS ${mb(before.rssBytes)} → ${mb(after.rssBytes)}`);
      // The load with them held is a row of its own; its failure must not lose the memory figures.
      const sessions = LEVELS[0] ?? 10;
      try {
        const direct = await runLoad(calculator.url, sessions, calculator.pid, dbPid);
        const through = await runLoad(gatewayUrl, sessions, calculator.pid, dbPid, gateway);
        rows.push({ sessions: `${sessions} + ${opened.opened} idle`, direct, through });
      } catch (err) {
        idle.loadError = (err as Error).message;
      }
    }

    const flushed = await ask(gateway, 'flush', 'flushed');
    const storage = await captureBytes(store);

    heading(`gateway scale: tools/call add, ${CALLS} calls per run, capture on, the gateway in its own process`);
    console.log(machine);
    console.log('one run per row, direct first; on a loaded machine throughput and p99 move with the load, the gateway CPU per call much less\n');
    console.log(
      table(
        ['sessions', 'direct calls/s', 'gateway calls/s', '× direct', 'direct p99', 'gateway p99', 'p99 × direct', 'gateway CPU/call', 'less background', 'CPU/call vs first', 'FerretDB CPU/msg', 'gateway RSS', 'gateway heap'],
        rows.map((r) => {
          const d = summarize(r.direct.load.latenciesMs);
          const g = summarize(r.through.load.latenciesMs);
          const cpu = perCall(r.through, r.through.gatewayCpuMs);
          const net = perCall(r.through, r.through.gatewayCpuMs - backgroundMsPerS * (r.through.load.wallMs / 1000));
          const first = perCall(rows[0]!.through, rows[0]!.through.gatewayCpuMs);
          const errors = r.direct.load.errors + r.through.load.errors;
          return [
            r.sessions + (errors ? ` (${errors} errors)` : ''),
            rate(r.direct).toFixed(0),
            rate(r.through).toFixed(0),
            `${(rate(r.through) / rate(r.direct)).toFixed(2)}×`,
            fmtMs(d.p99),
            fmtMs(g.p99),
            `${(g.p99 / d.p99).toFixed(2)}×`,
            `${cpu.toFixed(3)} ms`,
            `${net.toFixed(3)} ms`,
            `${(cpu / first).toFixed(2)}×`,
            // Two captured messages per call (request and response); the direct run is the database's own background.
            Number.isFinite(r.through.dbCpuMs) ? `${((r.through.dbCpuMs - r.direct.dbCpuMs * (r.through.load.wallMs / r.direct.load.wallMs)) / (2 * r.through.load.calls) * 1000).toFixed(0)} µs` : '—',
            mb(r.through.gatewayMem?.rssBytes),
            mb(r.through.gatewayMem?.heapUsedBytes),
          ];
        }),
      ),
    );
    console.log('\n(target: gateway CPU per call ≤ 0.3 ms with capture on, and within 1.2× of the first row up to 1,000 sessions)');
    console.log(`gateway with no traffic: ${backgroundMsPerS.toFixed(1)} ms of CPU per second (over ${BACKGROUND_SAMPLE_MS / 1000} s); "less background" takes that out of the calls' CPU`);
    console.log(`gateway at start (after GC): RSS ${mb(idleBaseline.rssBytes)}, heap ${mb(idleBaseline.heapUsedBytes)}`);
    for (const r of rows) {
      for (const [path, m] of [['direct', r.direct], ['gateway', r.through]] as const) {
        if (m.load.errors) console.log(`${r.sessions} sessions, ${path}: ${m.load.errors} errors, the first: ${m.load.firstError}`);
      }
    }
    if (idle) {
      const per = (a: number, b: number) => ((b - a) / Math.max(1, idle!.opened) / 1024).toFixed(2);
      console.log(
        `idle sessions: ${idle.opened} of ${IDLE} opened in ${(idle.openMs / 1000).toFixed(0)} s (${idle.failed} failed${idle.firstError ? `, the first: ${idle.firstError}` : ''}); ` +
          `gateway heap ${mb(idle.before.heapUsedBytes)} → ${mb(idle.after.heapUsedBytes)} (${per(idle.before.heapUsedBytes, idle.after.heapUsedBytes)} KiB per session), ` +
          `RSS ${mb(idle.before.rssBytes)} → ${mb(idle.after.rssBytes)} (${per(idle.before.rssBytes, idle.after.rssBytes)} KiB per session)`,
      );
      if (idle.stoppedBecause) console.log(`idle sessions: stopped early, ${idle.stoppedBecause}`);
      if (idle.loadError) console.log(`load with the idle sessions held failed: ${idle.loadError}`);
    }
    // The load moved with other engineers' work during the run: its end beside its start.
    console.log(`${new Date().toISOString()}: load average ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min) at the end`);
    const cs = storage.collStats;
    console.log(
      `capture storage: ${storage.messages} messages stored (writer: captured ${flushed.captured}, written ${flushed.written}, dropped ${flushed.dropped}); ` +
        `${(storage.bsonPer1000 / 1024).toFixed(0)} KiB of BSON per 1,000 messages` +
        (cs ? `; collStats per 1,000: data ${(cs.sizePer1000 / 1024).toFixed(0)} KiB, storage ${(cs.storagePer1000 / 1024).toFixed(0)} KiB, indexes ${(cs.indexesPer1000 / 1024).toFixed(0)} KiB` : '; collStats: not available'),
    );
  } finally {
    await cleanup();
  }
}

await main();
