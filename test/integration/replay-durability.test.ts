/**
 * A replay outlives its worker: the worker (a process of its own, as in production) is killed in
 * the middle of a replay; a new worker ends the killed one's replay instances and resumes from the
 * position in the last heartbeat, and the report counts every request once. A replay can also be
 * cancelled, and says so; a gate's replay whose deployment is terminated from outside (Temporal
 * CLI) ends its report as cancelled, with that reason; a replay workflow terminated itself is
 * shown ended when its report is read, and its end is told once in the event stream.
 */
import assert from 'node:assert/strict';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import type { ReplayReportDoc } from '../../core/documents.ts';
import { createLogger } from '../../core/log.ts';
import { replayStore } from '../../core/replay-store.ts';
import { stepGroupsDir } from '../../activities/step-processes.ts';
import { signalGroup } from '../../runner/process-group.ts';
import { startSystem, type System } from '../../cli/system.ts';
import { repoRoot, stackBinary } from '../../stack/binaries.ts';
import { freePort } from '../../stack/ports.ts';
import { membersOfGroups } from '../support/processes.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { startWorkerProcess } from '../support/worker-process.ts';

const SERVICE = 'rpd';
/** Captured sessions of six lookups each; the candidate answers each in 400 ms, one session at a time. */
const SESSIONS = 20;
const CALLS = SESSIONS * 6;
let config: ReturnType<typeof testConfig>;
let system: System;
let worker: ResultPromise | undefined;
let base: string;
let dir: string;
let connection: Connection;
let temporal: TemporalClient;

before(async () => {
  config = testConfig({ MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100', MCPSHIP_DRAIN_MS: '200' });
  system = await startSystem(config, createLogger('warn'), { worker: false, api: true });
  base = system.api!.url;
  dir = path.join(config.servicesDir, SERVICE);
  worker = startWorkerProcess(config);
  connection = await Connection.connect({ address: stackAddresses().temporalAddress });
  temporal = new TemporalClient({ connection, namespace: config.temporal.namespace });
});

after(async () => {
  worker?.kill('SIGTERM');
  await worker;
  await connection?.close();
  await system?.stop();
});

async function api<T = any>(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${pathname}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as T };
}

async function saveVersion(version: string, env: Record<string, string>, autoDeploy: boolean): Promise<void> {
  const file = path.join(dir, 'mcp.json');
  const m = JSON.parse(await readFile(file, 'utf8'));
  // One session at a time, so the kill lands between well-defined positions.
  const rollout = { autoDeploy, steps: [100], replayGate: { concurrency: 1, minMessages: 1 } };
  await writeFile(file, JSON.stringify({ ...m, name: SERVICE, version, start: { ...m.start, env }, rollout }, null, 2));
}

const versionState = async (version: string) => (await system.store.versions.findOne({ service: SERVICE, version }))?.state;
const report = async (replayId: string) => (await api<ReplayReportDoc>('GET', `/api/services/${SERVICE}/replays/${replayId}`)).body;

test('setup: a live version with captured sessions, and a slower candidate', async () => {
  await cp(path.join(repoRoot, 'test', 'fixtures', 'replay-service'), dir, { recursive: true });
  await saveVersion('1.0.0', { MODE: 'good' }, true);
  await waitFor('1.0.0 ACTIVE', async () => (await versionState('1.0.0')) === 'ACTIVE' || undefined, 300_000, 250);
  for (let s = 0; s < SESSIONS; s++) {
    const client = new Client({ name: 'user', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp/${SERVICE}`));
    await client.connect(transport);
    for (let i = 0; i < 6; i++) await client.callTool({ name: 'lookup', arguments: { key: `k${s}${i}` } });
    await transport.terminateSession();
    await client.close();
  }
  await waitFor('the capture', async () => (await system.store.messages.countDocuments({ service: SERVICE, toolName: 'lookup', direction: 'server_to_client' })) >= CALLS || undefined, 60_000, 200);
  await saveVersion('1.0.1', { MODE: 'good', DELAY_MS: '400' }, false);
  await waitFor('1.0.1 STAGED', async () => (await versionState('1.0.1')) === 'STAGED' || undefined, 300_000, 250);
});

test('the worker killed mid-replay: a new worker ends the old replay instances and resumes from the heartbeated position', async () => {
  const started = await api<{ replayId: string }>('POST', `/api/services/${SERVICE}/replays`, { version: '1.0.1' });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const { replayId } = started.body;
  // Heartbeats reach Temporal throttled (at most every 80% of the heartbeat timeout): the kill
  // waits until Temporal holds a position past the start, the checkpoint a new worker resumes from.
  const handle = temporal.workflow.getHandle(`replay/${SERVICE}/1.0.1`, replayId);
  await waitFor('a heartbeated position past two sessions', async () => {
    const { raw } = await handle.describe();
    const data = raw.pendingActivities?.find((a) => a.activityType?.name === 'runReplay')?.heartbeatDetails?.payloads?.[0]?.data;
    return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { position: number }).position >= 2 || undefined : undefined;
  }, 300_000, 250);
  const groups = (await readdir(stepGroupsDir(config.stateDir))).map(Number).filter((n) => n > 1);
  assert.equal(groups.length, 2, 'a candidate and a stable instance, recorded');
  const killed = worker!;
  killed.kill('SIGKILL');
  await waitFor('the worker to die', () => killed.exitCode !== null || killed.signalCode !== null);
  const doneAtKill = (await report(replayId)).done;
  assert.ok(doneAtKill < CALLS, `the kill landed mid-replay (${doneAtKill} of ${CALLS} done)`);

  worker = startWorkerProcess(config);
  await waitFor("the killed worker's replay instances to be ended by the new worker", () => membersOfGroups(groups).length === 0, 60_000).catch((err: Error) => {
    for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
    throw err;
  });
  const final = await waitFor('the replay to finish on the new worker', async () => {
    const r = await report(replayId);
    return r.status !== 'RUNNING' ? r : undefined;
  }, 300_000, 500);
  assert.equal(final.status, 'DONE', final.error);
  assert.deepEqual({ ...final.counts }, { replayed: CALLS, equal: 0, noise: CALLS, differs: 0, breaks: 0, skipped: 0 });
  assert.equal(final.resumes.length, 1, JSON.stringify(final.resumes));
  assert.ok(final.resumes[0]!.position >= 2, `resumed after the sessions done before the kill (position ${final.resumes[0]!.position})`);
  const { items } = await replayStore(system.store);
  assert.equal(await items.countDocuments({ replayId }), CALLS, 'every request stored once');
});

test('a replay can be cancelled; its report says so and its instances stop', async () => {
  const started = await api<{ replayId: string }>('POST', `/api/services/${SERVICE}/replays`, { version: '1.0.1' });
  const { replayId } = started.body;
  await waitFor('the replay to make progress', async () => (await report(replayId)).done >= 6 || undefined, 300_000, 200);
  const groups = (await readdir(stepGroupsDir(config.stateDir))).map(Number).filter((n) => n > 1);
  const cancel = await api('POST', `/api/services/${SERVICE}/replays/${replayId}/cancel`, {});
  assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
  const final = await waitFor('the replay to end', async () => {
    const r = await report(replayId);
    return r.status !== 'RUNNING' ? r : undefined;
  }, 120_000, 250);
  assert.equal(final.status, 'CANCELLED');
  assert.ok(final.done < CALLS);
  await waitFor('the replay instances to stop', () => membersOfGroups(groups).length === 0, 30_000);
  assert.equal((await api('POST', `/api/services/${SERVICE}/replays/${replayId}/cancel`, {})).status, 409, 'cancelling an ended replay is refused');
});

test('a gate replay whose deployment is terminated from outside ends its report as cancelled, with the reason', async () => {
  const deploy = await api('POST', `/api/services/${SERVICE}/deploy`, { version: '1.0.1' });
  assert.equal(deploy.status, 202, JSON.stringify(deploy.body));
  const { reports } = await replayStore(system.store);
  const gate = await waitFor('the gate replay to make progress', async () => {
    const r = await reports.findOne({ service: SERVICE, candidate: '1.0.1', trigger: 'gate' });
    return r && r.status === 'RUNNING' && r.done >= 6 ? r : undefined;
  }, 300_000, 200);
  const groups = (await readdir(stepGroupsDir(config.stateDir))).map(Number).filter((n) => n > 1);

  await execa(stackBinary('temporal'), ['workflow', 'terminate', '--workflow-id', `deploy/${SERVICE}/1.0.1`, '--address', stackAddresses().temporalAddress, '--namespace', config.temporal.namespace, '--reason', 'test: ended from outside']);
  const replay = temporal.workflow.getHandle(gate.workflowId, gate.replayId);
  const closed = await waitFor('the gate replay to close', async () => {
    const { status } = await replay.describe();
    return status.name !== 'RUNNING' ? status.name : undefined;
  }, 120_000, 250);
  // The replay writes its end before it closes, so the report is final by now.
  const final = (await reports.findOne({ replayId: gate.replayId }))!;
  assert.deepEqual([closed, final.status], ['CANCELLED', 'CANCELLED'], `replay workflow ${closed}, report ${final.status}`);
  assert.match(final.error ?? '', /the deployment deploy\/rpd\/1\.0\.1 that ran this gate was terminated/);
  assert.ok(final.finishedAt);
  assert.equal((await report(gate.replayId)).status, 'CANCELLED', 'the API shows it ended');
  await waitFor('the replay instances to stop', () => membersOfGroups(groups).length === 0, 30_000);
});

test('a replay terminated from outside is shown ended, not running: its report is settled when read', async () => {
  const started = await api<{ replayId: string; workflowId: string }>('POST', `/api/services/${SERVICE}/replays`, { version: '1.0.1' });
  const { replayId, workflowId } = started.body;
  await waitFor('the replay to make progress', async () => (await report(replayId)).done >= 6 || undefined, 300_000, 200);
  const groups = (await readdir(stepGroupsDir(config.stateDir))).map(Number).filter((n) => n > 1);
  await execa(stackBinary('temporal'), ['workflow', 'terminate', '--workflow-id', workflowId, '--run-id', replayId, '--address', stackAddresses().temporalAddress, '--namespace', config.temporal.namespace, '--reason', 'test: ended from outside']);
  const { reports } = await replayStore(system.store);
  assert.equal((await reports.findOne({ replayId }))?.status, 'RUNNING', 'a terminated workflow writes nothing');

  // Two readers at once, each of which may find it RUNNING and settle it: the end is told once.
  const [read, list] = await Promise.all([report(replayId), api<{ replays: ReplayReportDoc[] }>('GET', `/api/services/${SERVICE}/replays`)]);
  assert.equal(read.status, 'CANCELLED');
  assert.match(read.error ?? '', /^terminated: the replay workflow replay\/rpd\/1\.0\.1 was terminated/);
  assert.equal((await reports.findOne({ replayId }))?.status, 'CANCELLED', 'stored so');
  assert.deepEqual(list.body.replays.filter((r) => r.status === 'RUNNING').map((r) => r.replayId), [], 'none listed as running');
  assert.equal((await report(replayId)).status, 'CANCELLED', 'read again');
  const ends = (await system.events.list({ service: SERVICE, kind: 'REPLAY_FINISHED', limit: 500 })).filter((e) => (e.details as { replayId?: string }).replayId === replayId);
  assert.equal(ends.length, 1, 'the end is told once');
  assert.deepEqual([ends[0]!.status, ends[0]!.version, ends[0]!.workflowId, ends[0]!.details?.status], ['failed', '1.0.1', workflowId, 'CANCELLED']);
  assert.match(String(ends[0]!.details?.error), /^terminated: the replay workflow replay\/rpd\/1\.0\.1 was terminated/);
  await waitFor('the replay instances to stop', () => membersOfGroups(groups).length === 0, 30_000);
});
