/**
 * Differential replay and the replay gate on the real stack (Temporal, FerretDB, worker with
 * runner, API and gateway), with real MCP server processes (test/fixtures/replay-service) and SDK
 * clients making the captured traffic:
 * - a compatible version whose answers carry a timestamp passes (noise), a destructive tool is not
 *   replayed, through the API and through the CLI;
 * - the schema diff runs with every replay: a required input added to the destructive tool (never
 *   replayed) rejects its captured calls and blocks, shown in the report and the matrix;
 * - a version that breaks a tool used in the capture is BLOCKED before any user request reaches it,
 *   and an override with a reason lets it go on; a blocked deployment terminated from outside
 *   (Temporal CLI) can be deployed again;
 * - traffic of an SDK v2 client speaking 2026-07-28 (stateless) is replayed request by request;
 * - a pinned client's traffic goes through its transform chain, as the gateway sends it: green
 *   through a good chain, a transform that forgets the answer differs;
 * - blue-green: the gate, then 100% at once, the previous version kept warm for a rollback.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execa } from 'execa';
import type { DeploymentState } from '../../core/deployment.ts';
import type { EventDoc, ReplayReportDoc, VersionDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { readRouting } from '../../core/routing-store.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { Client as StatelessClient, StreamableHTTPClientTransport as StatelessTransport } from '@modelcontextprotocol/client';
import { stackBinary } from '../../stack/binaries.ts';
import { McpTraffic } from '../support/mcp-traffic.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'rp';
let system: System;
let base: string;
let dir: string;
let wipeLog: string;
let config: ReturnType<typeof testConfig>;

const ROLLOUT = {
  autoDeploy: true,
  steps: [50, 100],
  intervalSec: 2,
  analysis: { minRequests: 1, requireTraffic: false, onInconclusive: 'pass' },
  // A bounded sample keeps each gate short on a loaded machine; the replay's own tests use it all.
  replayGate: { minMessages: 5, sampleSize: 120 },
};

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '200' });
  wipeLog = path.join(config.stateDir, 'wipes.log');
  await writeFile(wipeLog, '');
  // Passed to the instances through the manifest's passEnv: every wipe any instance runs is logged.
  process.env.WIPE_LOG = wipeLog;
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
});

after(async () => {
  await system?.stop();
});

async function api<T = any>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${pathname}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as T };
}

async function saveVersion(version: string, env: Record<string, string>, rollout: Record<string, unknown> = ROLLOUT): Promise<void> {
  const file = path.join(dir, 'mcp.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  await writeFile(file, JSON.stringify({ ...m, name: SERVICE, version, start: { ...m.start, env }, rollout }, null, 2));
}

const versionState = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))?.state;
const timeline = async () => (await system.events.list({ service: SERVICE, limit: 1000 })).map((e: EventDoc) => `${e.kind}@${e.version ?? ''}`).join(' ');
function waitForState(version: string, state: VersionDoc['state']): Promise<true> {
  return waitFor(`${SERVICE}@${version} ${state}`, async () => (await versionState(version)) === state || undefined, 300_000, 250).catch(async (err) => {
    throw new Error(`${(err as Error).message}\nevents: ${await timeline()}`);
  });
}
const wipes = async () => (await readFile(wipeLog, 'utf8')).split('\n').filter(Boolean).length;

async function waitForReport(replayId: string): Promise<ReplayReportDoc> {
  return waitFor(`replay ${replayId} to finish`, async () => {
    const { status, body } = await api<ReplayReportDoc>('GET', `/api/services/${SERVICE}/replays/${replayId}`);
    return status === 200 && body.status !== 'RUNNING' ? body : undefined;
  }, 300_000, 250);
}

/** Captured user traffic of the stable version: sessions calling lookup, add and the destructive wipe. */
async function userSessions(sessions: number): Promise<void> {
  for (let s = 0; s < sessions; s++) {
    const client = new Client({ name: `user-${s % 2}`, version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${SERVICE}`));
    await client.connect(transport);
    for (const key of ['a', 'b', 'c']) await client.callTool({ name: 'lookup', arguments: { key } });
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'add', arguments: { a: i, b: s } });
    await client.callTool({ name: 'wipe', arguments: {} });
    await transport.terminateSession();
    await client.close();
  }
}

test('the first version goes live and its traffic is captured', async () => {
  await cp(path.join(repoRoot, 'test', 'fixtures', 'replay-service'), dir, { recursive: true });
  await saveVersion('1.0.0', { MODE: 'good' });
  await waitForState('1.0.0', 'ACTIVE');
  await userSessions(4);
  // Capture is asynchronous: wait for every tool answer (7 per session) to be stored.
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: SERVICE, version: '1.0.0', direction: 'server_to_client', toolName: { $exists: true } })) >= 28 || undefined, 60_000, 200);
  assert.equal(await wipes(), 4, 'each user session wiped once');
});

test('a compatible version with a timestamp in its answers passes through the API; the destructive tool is not replayed', async () => {
  await saveVersion('1.0.1', { MODE: 'good' }, { ...ROLLOUT, autoDeploy: false });
  await waitForState('1.0.1', 'STAGED');
  const started = await api<{ replayId: string; workflowId: string }>('POST', `/api/services/${SERVICE}/replays`, { version: '1.0.1' });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.equal(started.body.workflowId, `replay/${SERVICE}/1.0.1`);
  const report = await waitForReport(started.body.replayId);

  assert.equal(report.status, 'DONE', report.error);
  assert.equal(report.baseline, '1.0.0');
  assert.deepEqual(
    { ...report.counts },
    { replayed: 28, equal: 12, noise: 12, differs: 0, breaks: 0, skipped: 4 },
    `counts ${JSON.stringify(report.counts)} samples ${JSON.stringify(report.samples)}`,
  );
  assert.match(report.skippedTools.wipe!, /destructiveHint/);
  assert.equal(await wipes(), 4, 'no replay instance ran wipe');
  assert.equal(report.gate?.decision, 'proven');
  const noisy = report.noisyPaths.filter((p) => p.tool === 'lookup').map((p) => p.path).sort();
  assert.deepEqual(noisy, ['/result/content/*/text/nonce', '/result/content/*/text/servedAt']);
  // The matrix's replay cells.
  const cells = await system.store.compatCells.find({ service: SERVICE, version: '1.0.1', source: 'replay' }).toArray();
  const byKey = Object.fromEntries(cells.map((c) => [c.columnKey, c.status]));
  assert.equal(byKey['tool:add'], 'equal');
  assert.equal(byKey['tool:lookup'], 'noise');
  assert.equal(byKey['tool:wipe'], 'skipped');
  assert.ok(cells.some((c) => c.column.kind === 'client' && c.column.clientName === 'user-0'), `client columns: ${Object.keys(byKey).join(', ')}`);
});

test('mcpship replay prints progress and the report; a differing version would be blocked (exit 1)', async () => {
  await saveVersion('1.0.2', { MODE: 'different' }, { ...ROLLOUT, autoDeploy: false });
  await waitForState('1.0.2', 'STAGED');
  const cli = await execa(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'replay', SERVICE, '1.0.2', '--tools', 'lookup', '--api', base], { reject: false, cwd: repoRoot, env: { MCPSHIP_LOG_LEVEL: 'warn', MCPSHIP_STATE_DIR: config.stateDir } });
  assert.equal(cli.exitCode, 1, `${cli.stdout}\n${cli.stderr}`);
  assert.match(cli.stdout, /replay \S+ started \(replay\/rp\/1\.0\.2\)/);
  assert.match(cli.stdout, /replayed 12: equal 0, noise 0, differs 12, breaks 0, skipped 0/);
  assert.match(cli.stdout, /value_changed\s+\/result\/content\/\*\/text\/value/);
  assert.match(cli.stdout, /gate: BLOCKED/);
});

test('the schema diff runs with the replay: a required input added to the destructive tool blocks on its captured calls alone', async () => {
  await saveVersion('1.0.3', { MODE: 'good', STRICT_WIPE: '1' }, { ...ROLLOUT, autoDeploy: false });
  await waitForState('1.0.3', 'STAGED');
  const started = await api<{ replayId: string }>('POST', `/api/services/${SERVICE}/replays`, { version: '1.0.3', sampleSize: 7 });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const report = await waitForReport(started.body.replayId);
  assert.equal(report.status, 'DONE', report.error);
  assert.equal(report.counts.breaks + report.counts.differs, 0, 'the replayed requests all pass');
  const change = report.schema?.changes.find((c) => c.tool === 'wipe');
  assert.deepEqual(change && { kind: change.kind, class: change.class, usage: change.usage }, { kind: 'required_input_added', class: 'breaking', usage: { calls: 4, rejected: 4 } }, JSON.stringify(report.schema));
  assert.equal(report.schema?.class, 'breaking');
  assert.equal(report.gate?.decision, 'blocked');
  assert.match(report.gate!.reasons.join(' '), /schema: 4 of \d+ captured calls would be rejected by 1\.0\.3.*wipe: new required input "confirm"/);
  const cell = await system.store.compatCells.findOne({ service: SERVICE, version: '1.0.3', source: 'schema', columnKey: 'tool:wipe' });
  assert.deepEqual([cell?.status, cell?.runId], ['breaks', report.replayId]);
});

test('a version that breaks a tool used in the capture is BLOCKED before any user request reaches it; an override lets it go on', async () => {
  const traffic = new McpTraffic(`${base}/mcp/${SERVICE}`);
  await waitFor('traffic to flow', () => traffic.report.ok > 5);
  await saveVersion('1.0.4', { MODE: 'broken' });
  await waitForState('1.0.4', 'BLOCKED');
  // Users kept calling all along; not one of their requests went to the blocked version.
  const during = traffic.report.ok;
  await waitFor('more user calls while blocked', () => traffic.report.ok > during + 5);
  assert.equal(await system.store.messages.countDocuments({ service: SERVICE, version: '1.0.4' }), 0, 'no user traffic captured for the candidate');
  assert.deepEqual((await readRouting(system.store, SERVICE)).weights['1.0.4'] ?? 0, 0);
  const state = (await api<DeploymentState>('GET', `/api/services/${SERVICE}/deployment`)).body;
  assert.equal(state.stage, 'BLOCKED');
  assert.equal(state.replayGate?.decision, 'blocked');
  assert.ok((state.replayGate?.counts?.breaks ?? 0) >= 6, JSON.stringify(state.replayGate));
  assert.match(state.replayGate!.reasons.join(' '), /break/);
  const blocked = (await system.events.list({ service: SERVICE, limit: 1000 })).find((e) => e.kind === 'REPLAY_BLOCKED' && e.version === '1.0.4');
  assert.ok(blocked, await timeline());

  // Ended from outside while blocked (the Temporal CLI, as an operator might): the version can be deployed again.
  const { temporalAddress } = stackAddresses();
  await execa(stackBinary('temporal'), ['workflow', 'terminate', '--workflow-id', `deploy/${SERVICE}/1.0.4`, '--address', temporalAddress, '--namespace', config.temporal.namespace, '--reason', 'test: ended from outside']);
  assert.equal(await versionState('1.0.4'), 'BLOCKED');
  const again = await api('POST', `/api/services/${SERVICE}/deploy`, { version: '1.0.4' });
  assert.equal(again.status, 202, JSON.stringify(again.body));
  await waitFor('the second deployment to block again', async () => (await system.events.list({ service: SERVICE, limit: 1000 })).filter((e) => e.kind === 'REPLAY_BLOCKED' && e.version === '1.0.4').length === 2 || undefined, 300_000, 250);

  // Promote is refused while blocked; an override needs a reason.
  assert.equal((await api('POST', `/api/services/${SERVICE}/promote`, {})).status, 409);
  assert.equal((await api('POST', `/api/services/${SERVICE}/deployment/override`, {})).status, 400);
  const overridden = await api<DeploymentState>('POST', `/api/services/${SERVICE}/deployment/override`, { reason: 'add is being fixed by the caller' });
  assert.equal(overridden.status, 200, JSON.stringify(overridden.body));
  await waitFor('the canary step after the override', async () => (await system.events.list({ service: SERVICE, limit: 1000 })).some((e) => e.kind === 'CANARY_STEP' && e.version === '1.0.4') || undefined, 120_000, 250);
  assert.equal((await api<DeploymentState>('GET', `/api/services/${SERVICE}/deployment`)).body.replayGate?.override, 'add is being fixed by the caller');
  await api('POST', `/api/services/${SERVICE}/abort`, { reason: 'test done' });
  await waitFor('1.0.4 to end', async () => ['ABORTED', 'ROLLED_BACK'].includes((await versionState('1.0.4')) ?? '') || undefined, 120_000, 250);
  await traffic.stop();
});

test('blue-green: gate, then 100% at once; the previous version stays warm and a rollback to it is instant', async () => {
  await saveVersion('1.0.5', { MODE: 'good' }, { ...ROLLOUT, strategy: 'blueGreen', blueGreen: { keepWarmSec: 600 } });
  await waitForState('1.0.5', 'ACTIVE');
  await waitForState('1.0.0', 'ARCHIVED');
  const events = (await system.events.list({ service: SERVICE, limit: 1000 })).filter((e) => e.version === '1.0.5');
  assert.ok(events.some((e) => e.kind === 'REPLAY_GATE' && e.status === 'ok'), events.map((e) => e.kind).join(' '));
  assert.ok(!events.some((e) => e.kind === 'CANARY_STEP'), 'no canary steps');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.5');
  await waitFor('the deployment to keep 1.0.0 warm', async () => (await api<DeploymentState>('GET', `/api/services/${SERVICE}/deployment`)).body.stage === 'WARM' || undefined, 60_000, 250);
  assert.ok((await system.store.instances.countDocuments({ service: SERVICE, version: '1.0.0', state: 'ready' })) >= 1, 'previous instances still ready');

  const from = Date.now();
  const rollback = await api('POST', `/api/services/${SERVICE}/rollback`, { version: '1.0.0' });
  assert.equal(rollback.status, 202, JSON.stringify(rollback.body));
  await waitForState('1.0.0', 'ACTIVE');
  const tookMs = Date.now() - from;
  const restarted = await system.store.instances.find({ service: SERVICE, version: '1.0.0' }).toArray();
  assert.ok(restarted.every((i) => i.restarts === 0), 'the warm instances served the rollback, none was started anew');
  console.log(`blue-green rollback to the warm version: ${tookMs} ms`);
});

test('a step that saw too little traffic holds, then pauses for a person; once the replay gate proved a version, such steps pass', async () => {
  const other = 'rq';
  const otherDir = path.join(config.servicesDir, other);
  const rollout = { autoDeploy: true, steps: [50, 100], intervalSec: 1, analysis: { minRequests: 3, maxInconclusiveHolds: 2 }, replayGate: { minMessages: 5 } };
  const save = async (version: string) => {
    const m = JSON.parse(await readFile(path.join(repoRoot, 'test', 'fixtures', 'replay-service', 'mcp.json'), 'utf8'));
    await writeFile(path.join(otherDir, 'mcp.json'), JSON.stringify({ ...m, name: other, version, rollout }, null, 2));
  };
  const stateOf = async (version: string) => (await system.store.versions.findOne({ service: other, version }))?.state;
  const eventsOf = async (version: string) => (await system.events.list({ service: other, limit: 1000 })).filter((e) => e.version === version);
  await cp(path.join(repoRoot, 'test', 'fixtures', 'replay-service'), otherDir, { recursive: true });
  await save('1.0.0');
  await waitFor(`${other}@1.0.0 ACTIVE`, async () => (await stateOf('1.0.0')) === 'ACTIVE' || undefined, 300_000, 250);

  // Nothing captured: the gate says so, and with no user traffic the step holds twice, then pauses.
  await save('1.0.1');
  const paused = await waitFor('the rollout to pause', async () => (await eventsOf('1.0.1')).find((e) => e.kind === 'PAUSED'), 300_000, 250);
  const events = await eventsOf('1.0.1');
  const gate = events.find((e) => e.kind === 'REPLAY_GATE' && e.status !== 'running');
  assert.equal((gate?.details as { decision?: string }).decision, 'unproven');
  assert.match((gate?.details as { reasons: string[] }).reasons.join(' '), /no captured traffic/);
  assert.equal(events.filter((e) => e.kind === 'STEP_HELD').length, 2);
  assert.match((paused.details as { reason: string }).reason, /too little traffic/);
  assert.equal(await stateOf('1.0.1'), 'CANARY', 'not promoted on no evidence');
  const resumed = await fetch(`${base}/api/services/${other}/resume`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(resumed.status, 200);
  await waitFor(`${other}@1.0.1 ACTIVE after the person resumed`, async () => (await stateOf('1.0.1')) === 'ACTIVE' || undefined, 120_000, 250);

  // Captured traffic of 1.0.1, then 1.0.2: the gate proves it, and its quiet step passes without holding.
  const client = new Client({ name: 'user', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${other}`));
  await client.connect(transport);
  for (let i = 0; i < 6; i++) await client.callTool({ name: 'add', arguments: { a: i, b: i } });
  await transport.terminateSession();
  await client.close();
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: other, version: '1.0.1', toolName: 'add', direction: 'server_to_client' })) >= 6 || undefined, 60_000, 200);
  await save('1.0.2');
  await waitFor(`${other}@1.0.2 ACTIVE`, async () => (await stateOf('1.0.2')) === 'ACTIVE' || undefined, 300_000, 250);
  const proven = await eventsOf('1.0.2');
  assert.equal((proven.find((e) => e.kind === 'REPLAY_GATE' && e.status === 'ok')?.details as { decision?: string } | undefined)?.decision, 'proven');
  assert.equal(proven.filter((e) => e.kind === 'STEP_HELD' || e.kind === 'PAUSED').length, 0);
  assert.ok(proven.some((e) => e.kind === 'ANALYSIS' && (e.details as { inconclusive?: boolean }).inconclusive), 'its step did see too little traffic');
});

test('stateless (2026-07-28) traffic of an SDK v2 client is replayed request by request', async () => {
  const other = 'rs';
  const otherDir = path.join(config.servicesDir, other);
  const save = async (version: string, autoDeploy: boolean) =>
    writeFile(
      path.join(otherDir, 'mcp.json'),
      JSON.stringify({
        name: other,
        version,
        transport: 'http',
        http: { path: '/mcp' },
          // whoami answers with VERSION: the candidate differs there (and in the serverInfo of every result, which is not compared).
        start: { command: 'node', args: ['server.mjs'], env: { VERSION: version } },
        install: null,
        steps: { lint: { run: 'node --check server.mjs' }, test: { run: 'node -e 0' }, build: { run: 'node -e 0' } },
        rollout: { ...ROLLOUT, autoDeploy, replayGate: { ...ROLLOUT.replayGate, allowTools: ['echo', 'whoami'] } },
      }),
    );
  const stateOf = async (version: string) => (await system.store.versions.findOne({ service: other, version }))?.state;
  await cp(path.join(repoRoot, 'test', 'fixtures', 'dual-mode', 'server.mjs'), path.join(otherDir, 'server.mjs'));
  await save('1.0.0', true);
  await waitFor(`${other}@1.0.0 ACTIVE`, async () => (await stateOf('1.0.0')) === 'ACTIVE' || undefined, 300_000, 250);

  const transport = new StatelessTransport(new URL(`${base}/mcp/${other}`));
  const client = new StatelessClient({ name: 'stateless-user', version: '2.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(transport);
  assert.equal(transport.protocolVersion, '2026-07-28');
  for (const text of ['a', 'b', 'c']) await client.callTool({ name: 'echo', arguments: { text } });
  for (let i = 0; i < 2; i++) await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: other, version: '1.0.0', direction: 'server_to_client', toolName: { $exists: true } })) >= 5 || undefined, 60_000, 200);
  assert.equal(await system.store.messages.countDocuments({ service: other, sessionId: { $exists: true }, method: 'tools/call' }), 0, 'the calls were stateless');

  await save('1.0.1', false);
  await waitFor(`${other}@1.0.1 STAGED`, async () => (await stateOf('1.0.1')) === 'STAGED' || undefined, 300_000, 250);
  const started = await api<{ replayId: string }>('POST', `/api/services/${other}/replays`, { version: '1.0.1' });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const report = await waitFor(`replay of ${other}`, async () => {
    const { status, body } = await api<ReplayReportDoc>('GET', `/api/services/${other}/replays/${started.body.replayId}`);
    return status === 200 && body.status !== 'RUNNING' ? body : undefined;
  }, 300_000, 250);
  assert.equal(report.status, 'DONE', report.error);
  assert.deepEqual({ ...report.counts }, { replayed: 5, equal: 3, noise: 0, differs: 2, breaks: 0, skipped: 0 }, JSON.stringify(report.samples));
  assert.deepEqual([report.perTool.echo?.equal, report.perTool.whoami?.differs], [3, 2]);
  assert.equal(report.samples[0]?.diffs[0]?.path, '/result/content/0/text');
  assert.equal(report.schema?.class, 'none');
  const cells = await system.store.compatCells.find({ service: other, version: '1.0.1', source: 'replay' }).toArray();
  const client2026 = cells.find((c) => c.column.kind === 'client' && c.column.protocolRevision === '2026-07-28');
  assert.ok(client2026, JSON.stringify(cells.map((c) => c.columnKey)));
  assert.deepEqual([client2026.counts.replayed, client2026.status], [5, 'differs']);
});

test("a pinned client's captured requests are replayed through its transform chain: green through a good chain, a broken transform shows", async () => {
  const other = 'rpt';
  const otherDir = path.join(config.servicesDir, other);
  // 2.0.0 renames add's operands to x/y and answers {"value"}; its transform serves 1.0.0's clients.
  const transform = (backward: boolean) => `export default {
  from: '1.0.0',
  to: '2.0.0',
  description: 'add: operands a/b renamed x/y; the sum answered as JSON {"value"}',
  requestForward(msg: any, ctx: any) {
    if (ctx.toolName === 'add') {
      const { a, b, ...rest } = msg.params.arguments ?? {};
      msg.params.arguments = { ...rest, x: a, y: b };
    }
    return msg;
  },${backward ? `
  responseBackward(msg: any, ctx: any) {
    const item = msg.result?.content?.[0];
    if (ctx.toolName === 'add' && !msg.result.isError && typeof item?.text === 'string' && item.text.startsWith('{')) item.text = String(JSON.parse(item.text).value);
    return msg;
  },` : ''}
};
`;
  const manifest = JSON.parse(await readFile(path.join(repoRoot, 'test', 'fixtures', 'replay-service', 'mcp.json'), 'utf8'));
  // The transform and the manifest written at once, one save as an editor makes it.
  const save = (version: string, env: Record<string, string>, transformText?: string) =>
    Promise.all([
      writeFile(path.join(otherDir, 'mcp.json'), JSON.stringify({ ...manifest, name: other, version, start: { ...manifest.start, env }, rollout: { ...ROLLOUT, autoDeploy: version === '1.0.0' } })),
      ...(transformText ? [writeFile(path.join(otherDir, 'transforms', '1.0-to-2.0.ts'), transformText)] : []),
    ]);
  const stateOf = async (version: string) => (await system.store.versions.findOne({ service: other, version }))?.state;
  const replay = async (version: string) => {
    await waitFor(`${other}@${version} STAGED`, async () => (await stateOf(version)) === 'STAGED' || undefined, 300_000, 250);
    const started = await api<{ replayId: string }>('POST', `/api/services/${other}/replays`, { version });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const report = await waitFor(`replay of ${other}@${version}`, async () => {
      const { status, body } = await api<ReplayReportDoc>('GET', `/api/services/${other}/replays/${started.body.replayId}`);
      return status === 200 && body.status !== 'RUNNING' ? body : undefined;
    }, 300_000, 250);
    assert.equal(report.status, 'DONE', report.error);
    const cells = await system.store.compatCells.find({ service: other, version, source: 'replay', 'column.kind': 'client' }).toArray();
    const byClient = Object.fromEntries(cells.map((c) => [c.column.kind === 'client' ? c.column.clientName : '', c.status]));
    return { report, byClient };
  };

  await cp(path.join(repoRoot, 'test', 'fixtures', 'replay-service'), otherDir, { recursive: true });
  await mkdir(path.join(otherDir, 'transforms'));
  await save('1.0.0', { MODE: 'good' });
  await waitFor(`${other}@1.0.0 ACTIVE`, async () => (await stateOf('1.0.0')) === 'ACTIVE' || undefined, 300_000, 250);
  // A client built against 1.0.0 pins it; another does not. Both call add with a/b.
  for (const [name, headers] of [['pinned-app', { 'X-Mcpship-Service-Version': '1.0.0' }], ['plain-app', {}]] as const) {
    const client = new Client({ name, version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${other}`), { requestInit: { headers } });
    await client.connect(transport);
    for (let i = 0; i < 3; i++) await client.callTool({ name: 'add', arguments: { a: i, b: 2 } });
    await transport.terminateSession();
    await client.close();
  }
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: other, toolName: 'add', direction: 'server_to_client' })) >= 6 || undefined, 60_000, 200);
  assert.equal(await system.store.messages.countDocuments({ service: other, toolName: 'add', direction: 'client_to_server', versionAsked: '1.0.0' }), 3, 'the pinned calls carry the version asked');

  // The pinned client's a/b calls reach 2.0.0 as x/y and its answers are read back as 1.0.0's; the unpinned client's do break.
  await save('2.0.0', { MODE: 'good', OPERANDS: 'xy' }, transform(true));
  const good = await replay('2.0.0');
  assert.deepEqual({ ...good.report.counts }, { replayed: 6, equal: 3, noise: 0, differs: 0, breaks: 3, skipped: 0 }, JSON.stringify(good.report.samples));
  assert.deepEqual(good.byClient, { 'pinned-app': 'equal', 'plain-app': 'breaks' });

  // A transform that forgets to migrate the answer back: the pinned client would read 2.0.0's JSON.
  await save('2.0.1', { MODE: 'good', OPERANDS: 'xy' }, transform(false));
  const broken = await replay('2.0.1');
  assert.deepEqual({ ...broken.report.counts }, { replayed: 6, equal: 0, noise: 0, differs: 3, breaks: 3, skipped: 0 }, JSON.stringify(broken.report.samples));
  assert.deepEqual(broken.byClient, { 'pinned-app': 'differs', 'plain-app': 'breaks' });
  assert.ok(broken.report.topPaths.some((p) => p.path.startsWith('/result/content/')), JSON.stringify(broken.report.topPaths));
  assert.equal(broken.report.gate?.decision, 'blocked');
});
