/**
 * Races between the breaker and the deployment workflow, on the real stack (Temporal, FerretDB,
 * worker with runner, API and gateway) with the calculator sample as the service:
 * - routing changes are compare-and-set: concurrent writers lose nothing, and a pulled version
 *   stays pulled whatever weight it is given, until a deployment of it un-pulls it;
 * - a breach the workflow only learns from MongoDB (no signal) still rolls back, from PROMOTING;
 * - a pool that never gets ready ends the deployment FAILED with its pool stopped;
 * - superseding is noticed while waiting for instances.
 */
import assert from 'node:assert/strict';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { EventDoc, VersionDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { pullVersion, readRouting, setRouting } from '../../core/routing-store.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { editJson } from '../support/sample-service.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const SERVICE = 'calc';
/** A readiness timeout the deadline of a pool that never gets ready is counted in (four of them). */
const READY_TIMEOUT_MS = 5_000;
let system: System;
let base: string;
let dir: string;

before(async () => {
  const config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '200' });
  config.runner.readyTimeoutMs = READY_TIMEOUT_MS;
  system = await startSystem(config, createLogger('warn'), { worker: true, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
});

after(async () => {
  await system?.stop();
});

async function api(pathname: string, body: unknown = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const editManifest = (edit: (m: Record<string, any>) => void) => editJson(path.join(dir, 'mcp.json'), edit);

const versionState = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))?.state;
const waitForState = (version: string, state: VersionDoc['state']) => waitFor(`${SERVICE}@${version} ${state}`, async () => (await versionState(version)) === state, 300_000, 250);
const mark = () => system.events.lastSeq();
const since = (seq: number) => system.events.list({ service: SERVICE, afterSeq: seq, limit: 500 });

function waitForEvent(version: string, kinds: string[], afterSeq: number): Promise<EventDoc> {
  return waitFor(`${SERVICE}@${version} ${kinds.join('|')}`, async () => (await since(afterSeq)).find((e) => e.version === version && kinds.includes(e.kind)), 300_000, 250);
}

test('routing changes are compare-and-set: forty concurrent pulls all land, and the routing document shows the newest revision', async () => {
  const service = 'races';
  const versions = Array.from({ length: 40 }, (_, i) => `9.0.${i}`);
  await setRouting(system.store, service, { stable: '1.0.0', weights: { '1.0.0': 100 } });
  await Promise.all(versions.map((v) => pullVersion(system.store, service, v)));
  const routing = await readRouting(system.store, service);
  assert.deepEqual(routing.pulled, [...versions].sort(), 'no pull was lost to a concurrent one');
  const doc = await system.store.routing.findOne({ service });
  assert.deepEqual([...(doc?.pulled ?? [])].sort(), [...versions].sort(), 'what the gateways read');
  assert.equal(doc?.rev, routing.rev);
});

test('a pulled version stays pulled when a weight change races with the pull or comes after it; only un-pulling frees it', async () => {
  const service = 'sticky';
  await setRouting(system.store, service, { stable: '1.0.0', weights: { '1.0.0': 90, '2.0.0': 10 } });
  // The breaker's pull and the workflow's next step, at the same moment, again and again.
  await Promise.all(
    Array.from({ length: 10 }, (_, i) => [pullVersion(system.store, service, '2.0.0'), setRouting(system.store, service, { stable: '1.0.0', weights: { '1.0.0': 90 - i, '2.0.0': 10 + i } })]).flat(),
  );
  assert.ok((await readRouting(system.store, service)).pulled.includes('2.0.0'));
  await setRouting(system.store, service, { stable: '1.0.0', weights: { '1.0.0': 50, '2.0.0': 50 } });
  assert.ok((await readRouting(system.store, service)).pulled.includes('2.0.0'), 'setting a weight does not un-pull');
  await setRouting(system.store, service, { unpull: ['2.0.0'] });
  assert.deepEqual((await readRouting(system.store, service)).pulled, []);
});

test('a first version goes live', async () => {
  await cp(path.join(repoRoot, 'examples', 'services', 'calculator'), dir, { recursive: true, filter: (src) => !/node_modules|dist/.test(src) });
  await editManifest((m) => {
    m.name = SERVICE;
    m.rollout = { autoDeploy: true, steps: [50, 100], intervalSec: 600, analysis: { minRequests: 1, requireTraffic: false } };
  });
  await waitForState('1.0.0', 'ACTIVE');
  await editManifest((m) => (m.rollout.autoDeploy = false));
  await waitForState('1.0.1', 'STAGED');
});

test('a breach known only to MongoDB (the signal lost) rolls back from PROMOTING instead of promoting the canary', async () => {
  const from = await mark();
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.1' })).status, 202);
  await waitForEvent('1.0.1', ['CANARY_STEP'], from);
  // Another gateway's breaker pulled the canary; its signal never reached the workflow.
  await pullVersion(system.store, SERVICE, '1.0.1');
  assert.equal((await api(`/api/services/${SERVICE}/promote`)).status, 200);
  const end = await waitForEvent('1.0.1', ['ROLLBACK_COMPLETE', 'PROMOTED'], from);
  assert.equal(end.kind, 'ROLLBACK_COMPLETE', 'the pulled canary was not promoted');
  assert.match(String((end.details as { reason?: string }).reason), /circuit breaker: 1\.0\.1 was pulled/);
  assert.equal(await versionState('1.0.1'), 'ROLLED_BACK');
  assert.equal(await versionState('1.0.0'), 'ACTIVE', 'the previous version was not archived');
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.0');
  assert.equal(routing.weights['1.0.0'], 100);
  assert.ok(routing.pulled.includes('1.0.1'));
});

test('a pool that never gets ready ends the deployment FAILED, its pool stopped and the routing untouched', async () => {
  // Runs, but never listens: the runner's readiness probe never succeeds.
  await editManifest((m) => (m.start = { command: 'node', args: ['-e', 'setInterval(() => {}, 1000)'], env: {} }));
  await waitForState('1.0.2', 'STAGED');
  const from = await mark();
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.2' })).status, 202);
  const end = await waitForEvent('1.0.2', ['DEPLOYMENT_FAILED', 'PROMOTED', 'ROLLBACK_COMPLETE', 'DEPLOYMENT_ABORTED'], from);
  assert.equal(end.kind, 'DEPLOYMENT_FAILED');
  assert.match(String((end.details as { reason?: string }).reason), /0 of 1 instances ready/);
  const state = await fetch(`${base}/api/services/${SERVICE}/deployment`).then((r) => r.json());
  assert.equal(state.stage, 'FAILED');
  await waitFor('the pool stopped', async () => (await system.store.instances.countDocuments({ service: SERVICE, version: '1.0.2', state: { $ne: 'stopped' } })) === 0);
  const routing = await readRouting(system.store, SERVICE);
  assert.equal(routing.stable, '1.0.0');
  assert.equal(routing.weights['1.0.0'], 100);
  assert.ok(!routing.weights['1.0.2']);
});

test('a deployment superseded while its instances start is aborted at once; the next one un-pulls its own version', async () => {
  const from = await mark();
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.2' })).status, 202);
  await waitForEvent('1.0.2', ['DEPLOYMENT_STARTED'], from);
  assert.equal((await api(`/api/services/${SERVICE}/deploy`, { version: '1.0.1' })).status, 202);
  const end = await waitForEvent('1.0.2', ['DEPLOYMENT_ABORTED', 'DEPLOYMENT_FAILED'], from);
  assert.equal(end.kind, 'DEPLOYMENT_ABORTED', 'noticed while waiting, not after the readiness deadline');
  assert.match(String((end.details as { reason?: string }).reason), /superseded by deploy\/calc\/1\.0\.1/);

  // 1.0.1 was pulled by the breach above; its new deployment is what un-pulls it.
  await waitForEvent('1.0.1', ['CANARY_STEP'], from);
  const routing = await readRouting(system.store, SERVICE);
  assert.ok(!routing.pulled.includes('1.0.1'));
  assert.equal(routing.weights['1.0.1'], 50);
  assert.equal((await api(`/api/services/${SERVICE}/abort`)).status, 200);
  await waitForEvent('1.0.1', ['DEPLOYMENT_ABORTED'], from);
});
