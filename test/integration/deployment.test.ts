import assert from 'node:assert/strict';
import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { AnalysisResult, DeploymentState } from '../../core/deployment.ts';
import type { EventDoc, VersionDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { readRouting } from '../../core/routing-store.ts';
import { deploymentWorkflowId } from '../../core/workflow-ids.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { recordHistory } from '../support/histories.ts';
import { McpTraffic } from '../support/mcp-traffic.ts';
import { editJson } from '../support/sample-service.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'calc';
let system: System;
let base: string;
let config: ReturnType<typeof testConfig>;
let dir: string;

const ROLLOUT = {
  autoDeploy: true,
  steps: [25, 50, 100],
  intervalSec: 2,
  // A 2 s step can by chance get no new session; such a check is inconclusive, not failed.
  analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.95, maxP99Ms: 5000, maxFailedChecks: 0 },
  breaker: { minRequests: 5, maxErrorRate: 0.2, windowMs: 10_000, cooldownMs: 60_000 },
  // These tests are about live traffic: the analysis, the breaker and rollbacks. The replay gate would
  // block the broken version before any user saw it (replay.test.ts proves that), and replaying the
  // traffic the earlier tests captured takes longer than the steps here.
  replayGate: { enabled: false },
};

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '500' });
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
});

after(async () => {
  if (process.env.MCPSHIP_RECORD_HISTORIES) await recordHistories(['1.0.1', '1.0.2', '1.0.3', '1.0.4']);
  await system.stop();
});

/** Keeps real deployment histories in the repo for the replay test (MCPSHIP_RECORD_HISTORIES=1). */
async function recordHistories(versions: string[]): Promise<void> {
  const connection = await Connection.connect({ address: stackAddresses().temporalAddress });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  for (const version of versions) await recordHistory(client, deploymentWorkflowId(SERVICE, version), `deployment-workflow-${version}`);
  await connection.close();
}

async function api<T = any>(pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${pathname}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

const editManifest = (edit: (m: Record<string, any>) => void) => editJson(path.join(dir, 'mcp.json'), edit);

const versionState = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))?.state;

function waitForState(version: string, state: VersionDoc['state'], timeoutMs = 180_000): Promise<true> {
  return waitFor(`${SERVICE}@${version} ${state}`, async () => (await versionState(version)) === state || undefined, timeoutMs, 250).catch(async (err) => {
    const timeline = (await system.events.list({ service: SERVICE, limit: 500 })).map((e) => `${e.kind}${e.version ? `@${e.version}` : ''}${(e.details as { reason?: string })?.reason ? `(${(e.details as { reason: string }).reason.slice(0, 120)})` : ''}`);
    throw new Error(`${(err as Error).message}\nevents: ${timeline.join(' ')}`);
  });
}

/** Waits for a deployment's end event (PROMOTED, ROLLBACK_COMPLETE, DEPLOYMENT_ABORTED) after a point in the event log. */
function waitForEnd(version: string, kind: string, afterSeq: number, timeoutMs = 180_000): Promise<EventDoc> {
  return waitFor(`${SERVICE}@${version} ${kind}`, async () => (await system.events.list({ service: SERVICE, afterSeq, limit: 500 })).find((e) => e.version === version && e.kind === kind), timeoutMs, 250).catch(async (err) => {
    const timeline = (await system.events.list({ service: SERVICE, afterSeq, limit: 500 })).map((e) => `${e.kind}${e.version ? `@${e.version}` : ''}${(e.details as { reason?: string })?.reason ? `(${(e.details as { reason: string }).reason.slice(0, 120)})` : ''}`);
    throw new Error(`${(err as Error).message}\nevents since: ${timeline.join(' ')}`);
  });
}

const mark = () => system.events.lastSeq();
/** Calls watched after a rollback: more than the callsPerSession of every client, so a session stuck on the canary would show. */
const AFTER_ROLLBACK = 40;

const eventsOf = async (version: string) => system.events.list({ service: SERVICE, limit: 500 }).then((all) => all.filter((e: EventDoc) => e.version === version));

test('a first save goes live: validated, staged and, with nothing active yet, straight to ACTIVE', async () => {
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  await editManifest((m) => {
    m.name = SERVICE;
    m.rollout = ROLLOUT;
  });
  await waitForEnd('1.0.0', 'PROMOTED', 0);
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.0');
  assert.equal(routing.weights['1.0.0'], 100);
});

test('a good change rolls out 25 → 50 → 100 under live traffic with no failed client call, and the old version is archived', async () => {
  const traffic = new McpTraffic(`${base}/mcp/${SERVICE}`);
  await waitFor('traffic to flow', () => traffic.report.ok > 5);
  const from = await mark();
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = "v2";\n');
  await waitForEnd('1.0.1', 'PROMOTED', from);
  const report = await traffic.stop();

  assert.equal(report.failed, 0, `client errors: ${report.errors.join(' | ')}`);
  assert.ok(report.ok > 20, `traffic flowed throughout (${report.ok} calls)`);
  const weights = (await eventsOf('1.0.1')).filter((e) => e.kind === 'CANARY_STEP').map((e) => (e.details as { weight: number }).weight);
  assert.deepEqual(weights, [25, 50]);
  const analyses = (await eventsOf('1.0.1')).filter((e) => e.kind === 'ANALYSIS');
  // The canary really served clients while it was one (up to its last step's analysis, before the
  // promotion's weights), and was judged on what it served: with requireTraffic off, a step without
  // enough requests passes as inconclusive, so a healthy verdict alone proves nothing.
  const canaryUntil = analyses.at(-1)!.time.getTime();
  const byCanary = report.answers.filter((a) => a.version === '1.0.1' && a.at < canaryUntil).length;
  assert.ok(byCanary > 0, `calls answered by the canary during its steps: ${byCanary} of ${report.ok}`);
  // A step may see too few requests to judge ('info', held for another interval), never a failed one.
  assert.ok(analyses.every((e) => e.status === 'ok' || e.status === 'info'), `analyses: ${analyses.map((e) => e.status).join(', ')}`);
  const judged = analyses.filter((e) => e.status === 'ok' && !(e.details as unknown as AnalysisResult).inconclusive);
  assert.ok(judged.length >= 1, `at least one step judged healthy on enough canary requests: ${analyses.map((e) => (e.details as unknown as AnalysisResult).requests).join(', ')} requests`);
  assert.equal(await versionState('1.0.0'), 'ARCHIVED');
  assert.ok((await stat(path.join(config.stateDir, 'archive', SERVICE, '1.0.0', 'metadata.json'))).isFile());
  await waitFor('the old instances to stop', async () => (await system.store.instances.countDocuments({ service: SERVICE, version: '1.0.0', state: { $ne: 'stopped' } })) === 0 || undefined);
  const state = await api<DeploymentState>(`/api/services/${SERVICE}/deployment`);
  assert.equal(state.body.stage, 'ACTIVE');
  assert.equal(state.body.previous, '1.0.0');
});

test('a change whose tool throws in production trips the breaker and is rolled back; stable serves everything', async () => {
  // Short sessions, so that several clients meet the canary: the breaker does not trip on the
  // failures of one client alone (docs/health.md).
  const traffic = new McpTraffic(`${base}/mcp/${SERVICE}`, 3, 20, 2);
  await waitFor('traffic to flow', () => traffic.report.ok > 5);
  const server = path.join(dir, 'src', 'server.js');
  const source = await readFile(server, 'utf8');
  // Validation steps get the manifest's env too, with CI=true: a regression the service's own tests miss.
  await writeFile(server, source.replace("fn: (a, b) => a + b }", "fn: (a, b) => { if (process.env.CALC_PROD === '1' && process.env.CI !== 'true') throw new Error('regression in add'); return a + b; } }"));
  const from = await mark();
  // A step's analysis would also catch the regression; its first one is put out of reach, so
  // that it is the breaker that acts, as it must, between two analyses.
  await editManifest((m) => {
    m.start.env = { CALC_PROD: '1' };
    m.rollout = { ...ROLLOUT, intervalSec: 600 };
  });
  await waitForEnd('1.0.2', 'ROLLBACK_COMPLETE', from);
  const failedAtRollback = traffic.report.failed;
  const callsAtRollback = traffic.report.calls;
  await waitFor(`${AFTER_ROLLBACK} more calls`, () => traffic.report.calls >= callsAtRollback + AFTER_ROLLBACK);
  const report = await traffic.stop();
  // Every client session has come back to (or stayed on) stable: no call fails any more.
  assert.equal(report.failed, failedAtRollback, `failures after ROLLBACK_COMPLETE: ${report.errors.slice(-5).join(' | ')}`);

  const rolledBack = (await eventsOf('1.0.2')).find((e) => e.kind === 'ROLLBACK_COMPLETE');
  assert.match(String((rolledBack?.details as { reason?: string })?.reason), /circuit breaker: error rate/);
  assert.ok((await eventsOf('1.0.2')).some((e) => e.kind === 'BREAKER_OPEN'));
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.1');
  assert.equal(routing.weights['1.0.1'], 100);
  assert.equal(routing.weights['1.0.2'], 0);
  assert.ok(routing.pulled.includes('1.0.2'));
  assert.equal(await versionState('1.0.1'), 'ACTIVE');
  assert.ok(report.toolErrors > 0, 'the canary did fail some calls');

  // Putting the source back gives 1.0.1's content again: recognised, nothing new is staged.
  const again = await mark();
  await writeFile(server, source);
  await editManifest((m) => {
    m.start.env = {};
    m.rollout = ROLLOUT;
  });
  await waitFor('ALREADY_STAGED', async () => (await system.events.list({ service: SERVICE, afterSeq: again, kind: 'ALREADY_STAGED' })).find((e) => e.version === '1.0.1'), 180_000, 250);
});

test('manual rollback to an archived version, through the API, fast path to 100%, with no failed client call', async () => {
  const traffic = new McpTraffic(`${base}/mcp/${SERVICE}`);
  await waitFor('traffic to flow', () => traffic.report.ok > 5);
  const from = await mark();
  const res = await api(`/api/services/${SERVICE}/rollback`, { version: '1.0.0' });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  await waitForEnd('1.0.0', 'PROMOTED', from);
  await waitFor('the old instances to stop', async () => (await system.store.instances.countDocuments({ service: SERVICE, version: '1.0.1', state: { $ne: 'stopped' } })) === 0 || undefined);
  const report = await traffic.stop();
  assert.equal(report.failed, 0, `client errors: ${report.errors.join(' | ')}`);
  const weights = (await system.events.list({ service: SERVICE, afterSeq: from, limit: 500 })).filter((e) => e.kind === 'CANARY_STEP');
  assert.equal(weights.length, 0, 'no canary steps on the fast path');
  assert.equal(await versionState('1.0.1'), 'ARCHIVED');
  assert.equal((await readRouting(system.store, SERVICE)).stable, '1.0.0');
  const nothing = await api(`/api/services/${SERVICE}/rollback`, {});
  assert.equal(nothing.status, 409, 'nothing older than 1.0.0 is archived');
});

test('pause, resume, promote and abort are checked Updates', async () => {
  await editManifest((m) => (m.rollout = { ...ROLLOUT, autoDeploy: false, intervalSec: 600, analysis: { ...ROLLOUT.analysis, requireTraffic: false } }));
  await waitForState('1.0.3', 'STAGED');
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.3' })).status, 202);
  await waitForState('1.0.3', 'CANARY');

  const paused = await api<DeploymentState>(`/api/services/${SERVICE}/pause`, {});
  assert.equal(paused.status, 200);
  assert.equal(paused.body.paused, true);
  const again = await api(`/api/services/${SERVICE}/pause`, {});
  assert.equal(again.status, 409);
  assert.match(again.body.error.message, /already paused/);
  assert.equal((await api(`/api/services/${SERVICE}/resume`, {})).body.paused, false);
  const badWeight = await api(`/api/services/${SERVICE}/set-weight`, { weight: 150 });
  assert.equal(badWeight.status, 409);
  assert.match(badWeight.body.error.message, /weight must be a whole number from 0 to 100/);
  assert.equal((await api(`/api/services/${SERVICE}/set-weight`, { weight: 40 })).status, 200);
  await waitFor('weight 40', async () => (await readRouting(system.store, SERVICE)).weights['1.0.3'] === 40 || undefined);

  const promoted = await mark();
  assert.equal((await api(`/api/services/${SERVICE}/promote`, {})).status, 200);
  await waitForEnd('1.0.3', 'PROMOTED', promoted);
  const late = await api(`/api/services/${SERVICE}/promote`, {});
  assert.equal(late.status, 409, 'nothing to promote once the deployment has ended');

  await editManifest((m) => (m.description = 'abort me'));
  await waitForState('1.0.4', 'STAGED');
  await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.4' });
  await waitForState('1.0.4', 'CANARY');
  const abortFrom = await mark();
  const aborted = await api(`/api/services/${SERVICE}/abort`, { reason: 'changed my mind' });
  assert.equal(aborted.status, 200);
  await waitForEnd('1.0.4', 'DEPLOYMENT_ABORTED', abortFrom);
  assert.equal(await versionState('1.0.4'), 'ABORTED');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.3');
  assert.equal(routing.weights['1.0.3'], 100);
  const afterAbort = await api(`/api/services/${SERVICE}/pause`, {});
  assert.equal(afterAbort.status, 409);
});

test('one deployment per service: a newer deployment supersedes the running one, which restores its routing', async () => {
  await editManifest((m) => (m.description = 'first of two'));
  await waitForState('1.0.5', 'STAGED');
  await editManifest((m) => (m.description = 'second of two'));
  await waitForState('1.0.6', 'STAGED');
  const from = await mark();
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.5' })).status, 202);
  await waitForState('1.0.5', 'CANARY');
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.6' })).status, 202);
  const aborted = await waitForEnd('1.0.5', 'DEPLOYMENT_ABORTED', from);
  assert.match(String((aborted.details as { reason?: string }).reason), /superseded by deploy\/calc\/1\.0\.6/);
  await waitForState('1.0.6', 'CANARY');
  const started = (await system.events.list({ service: SERVICE, afterSeq: from, limit: 500 })).filter((e) => e.kind === 'DEPLOYMENT_STARTED').map((e) => e.version);
  assert.deepEqual(started, ['1.0.5', '1.0.6']);
  const abortedAt = aborted.seq;
  const canaryOf6 = (await system.events.list({ service: SERVICE, afterSeq: from, limit: 500 })).find((e) => e.version === '1.0.6' && e.kind === 'CANARY');
  assert.ok(canaryOf6 && canaryOf6.seq > abortedAt, 'the newer one became a canary only after the older one had ended');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.3');
  assert.ok(!routing.weights['1.0.5'] && routing.pulled.includes('1.0.5'), 'the superseded canary gets no sessions');
  assert.equal((await api(`/api/services/${SERVICE}/abort`, {})).status, 200);
  await waitForState('1.0.6', 'ABORTED');
});

test('bad control requests: unknown control, bad version, no deployment running', async () => {
  assert.equal((await api(`/api/services/${SERVICE}/explode`, {})).status, 404);
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: 'latest' })).status, 400);
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '9.9.9' })).status, 404);
  assert.equal((await api(`/api/services/${SERVICE}/promote`, {})).status, 409);
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.3' })).status, 409, 'an ACTIVE version is not deployed again');
});
