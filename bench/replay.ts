/**
 * Benchmark (issue 9): differential replay of captured traffic end to end, and the replay gate.
 *
 * One real system (`startSystem`: Temporal dev server + FerretDB + worker + runner + watcher +
 * API/gateway, in this process) on free ports with a fresh state dir, and the replay test service
 * (test/fixtures/replay-service: `lookup` answers JSON with a timestamp and a nonce, `add` adds).
 *
 * 1. Capture: BENCH_MESSAGES tool calls (half lookup, half add) made by BENCH_CLIENTS SDK clients
 *    through the gateway, in sessions of BENCH_SESSION_CALLS calls; every request and answer is
 *    captured (a call is two captured messages, and each session adds its initialize exchange).
 * 2. Replay: a compatible candidate is staged; `POST /api/services/<name>/replays` replays all
 *    BENCH_MESSAGES calls (rollout.replayGate.sampleSize) with BENCH_REPLAY_CONCURRENCY sessions
 *    in flight, against a candidate instance and a second stable instance started for the replay.
 *    From the report: the whole workflow's time (prepare: read and plan the capture; run: start two
 *    instances, replay, store each result; finish: noise model, counts, matrix cells), and
 *    replayed requests per second over it.
 *    Baseline, in the same run: the same plan sent straight to a candidate and a stable instance
 *    by the replay's own Conversation, same concurrency, no workflow, no storage, no judging
 *    (bench/lib/replay-direct.ts): what the HTTP exchanges alone cost on this machine now.
 * 3. Gate: the next version is saved with autoDeploy; its deployment replays the same capture
 *    before any weight. Time to the gate's decision: from the REPLAY_GATE start event (the
 *    candidate's own instances ready) to the decision, and from the save.
 *
 * Figures only, never assertions. Run: npx tsx bench/replay.ts (BENCH_MESSAGES=10000,
 * BENCH_CLIENTS=8, BENCH_SESSION_CALLS=100, BENCH_REPLAY_CONCURRENCY=8).
 */
import { cp, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startSystem } from '../cli/system.ts';
import type { EventDoc, ReplayReportDoc, VersionDoc } from '../core/documents.ts';
import { createLogger } from '../core/log.ts';
import { waitFor } from '../test/support/wait.ts';
import { startReplayInstance } from '../activities/replay-instances.ts';
import { planReplay, type SelectableDoc } from '../compat/replay-select.ts';
import { replayDirect } from './lib/replay-direct.ts';
import { benchConfig, benchStateDir, fmtMs, heading, machineLine, onceCleanup, removeStateDir, repoRoot, table } from './lib/common.ts';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const SESSION_CALLS = Number(process.env.BENCH_SESSION_CALLS ?? 100);
const CONCURRENCY = Number(process.env.BENCH_REPLAY_CONCURRENCY ?? 8);
const SERVICE = 'bench-replay';
const GUARD_MS = 30 * 60_000;

const stateDir = await benchStateDir('replay');
const config = await benchConfig(stateDir);
const system = await startSystem(config, createLogger('warn', 'bench'), { worker: true, api: true });
const cleanup = onceCleanup(async () => {
  await system.stop();
  await removeStateDir(stateDir);
});
const base = system.api!.url;
const dir = path.join(config.servicesDir, SERVICE);

const gate = { sampleSize: MESSAGES, concurrency: CONCURRENCY, minMessages: 1 };
async function save(version: string, autoDeploy: boolean): Promise<number> {
  const file = path.join(dir, 'mcp.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  await writeFile(file, JSON.stringify({ ...m, name: SERVICE, version, rollout: { autoDeploy, steps: [50, 100], intervalSec: 1, analysis: { onInconclusive: 'pass' }, replayGate: gate } }, null, 2));
  return Date.now();
}
const state = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))?.state;
const waitState = (version: string, s: VersionDoc['state']) => waitFor(`${SERVICE}@${version} ${s}`, async () => (await state(version)) === s || undefined, GUARD_MS, 200);
const findEvent = (match: (e: EventDoc) => boolean) => waitFor('event', async () => (await system.events.list({ service: SERVICE, limit: 5000 })).find(match), GUARD_MS, 100);

try {
  console.log(await machineLine());
  // Moved in at once, so the watcher never sees half a copy.
  const incoming = path.join(stateDir, 'incoming', SERVICE);
  await cp(path.join(repoRoot, 'test', 'fixtures', 'replay-service'), incoming, { recursive: true });
  await writeFile(path.join(incoming, 'mcp.json'), JSON.stringify({ ...JSON.parse(await readFile(path.join(incoming, 'mcp.json'), 'utf8')), name: SERVICE }, null, 2));
  await rename(incoming, dir);
  await waitState('1.0.0', 'ACTIVE');

  // 1. Capture.
  const captureStarted = Date.now();
  let next = 0;
  const client = async () => {
    while (next < MESSAGES) {
      const c = new Client({ name: 'bench', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${SERVICE}`));
      await c.connect(transport);
      for (let i = 0; i < SESSION_CALLS && next < MESSAGES; i++) {
        const n = next++;
        await c.callTool(n % 2 ? { name: 'add', arguments: { a: n, b: 1 } } : { name: 'lookup', arguments: { key: `k${n}` } });
      }
      await transport.terminateSession();
      await c.close();
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const callsMs = Date.now() - captureStarted;
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: SERVICE, version: '1.0.0', direction: 'server_to_client', toolName: { $exists: true } })) >= MESSAGES || undefined, GUARD_MS, 500);
  const captured = await system.store.messages.countDocuments({ service: SERVICE, version: '1.0.0' });

  // 2. Replay through the API.
  await save('1.0.1', false);
  await waitState('1.0.1', 'STAGED');
  const res = await fetch(`${base}/api/services/${SERVICE}/replays`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: '1.0.1' }) });
  const { replayId } = (await res.json()) as { replayId: string };
  const report = await waitFor('the replay', async () => {
    const r = (await (await fetch(`${base}/api/services/${SERVICE}/replays/${replayId}`)).json()) as ReplayReportDoc;
    return r.status && r.status !== 'RUNNING' ? r : undefined;
  }, GUARD_MS, 250);
  const started = await findEvent((e) => e.kind === 'REPLAY_STARTED' && (e.details as { replayId?: string }).replayId === replayId);
  const finished = await findEvent((e) => e.kind === 'REPLAY_FINISHED' && (e.details as { replayId?: string }).replayId === replayId);
  const replayMs = report.durationMs ?? NaN;

  // Baseline: the same plan, straight to two instances of the two versions.
  const docs = (await system.store.messages.find({ service: SERVICE, version: '1.0.0' }).sort({ at: 1, messageId: 1 }).toArray()) as SelectableDoc[];
  const plan = planReplay(docs, { sampleSize: MESSAGES }, replayId);
  const dirOf = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))!.stagedDir!;
  const instance = async (version: string) => startReplayInstance({ dir: await dirOf(version), label: `bench-direct-${version}`, stateDir: config.stateDir, readyTimeoutMs: 60_000, signal: new AbortController().signal });
  const [candidate, stable] = await Promise.all([instance('1.0.1'), instance('1.0.0')]);
  const direct = await replayDirect(plan, { candidate: candidate.url, stable: stable.url }, CONCURRENCY).finally(() => Promise.all([candidate.stop(), stable.stop()]));

  // 3. The gate of a deployment.
  const savedAt = await save('1.0.2', true);
  const gateStart = await findEvent((e) => e.kind === 'REPLAY_GATE' && e.version === '1.0.2' && e.status === 'running');
  const decision = await findEvent((e) => e.version === '1.0.2' && ((e.kind === 'REPLAY_GATE' && e.status !== 'running') || e.kind === 'REPLAY_BLOCKED'));
  const gateReport = (decision.details ?? {}) as { counts?: { replayed: number }; decision?: string };

  heading(`replay of ${MESSAGES} captured calls (${captured} captured messages) end to end`);
  console.log(
    table(
      ['figure', 'value'],
      [
        ['capture: calls through the gateway', `${MESSAGES} in ${fmtMs(callsMs)} (${CLIENTS} clients, sessions of ${SESSION_CALLS})`],
        ['replay status', `${report.status}: ${JSON.stringify(report.counts)}`],
        ['replay workflow, start to report', fmtMs(replayMs)],
        ['  prepare (read + plan the capture, open the report)', fmtMs(started.time.getTime() - new Date(report.startedAt).getTime())],
        ['  run + finish (2 instances started, replay, noise, counts, cells)', fmtMs(finished.time.getTime() - started.time.getTime())],
        ['replayed requests per second (whole workflow)', ((report.counts.replayed / replayMs) * 1000).toFixed(0)],
        ['baseline: the same plan straight to 2 instances (no workflow, storage, judging)', `${direct.requests} in ${fmtMs(direct.ms)}: ${((direct.requests / direct.ms) * 1000).toFixed(0)} requests/s`],
        ['captured messages per second (whole workflow)', ((captured / replayMs) * 1000).toFixed(0)],
        ['gate: decision', `${gateReport.decision ?? decision.kind} on ${gateReport.counts?.replayed ?? '?'} requests`],
        ['gate: instances ready -> decision', fmtMs(decision.time.getTime() - gateStart.time.getTime())],
        ['gate: save -> decision (validation, staging, instances, replay)', fmtMs(decision.time.getTime() - savedAt)],
      ],
    ),
  );
} finally {
  await cleanup();
}
