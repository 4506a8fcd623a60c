import assert from 'node:assert/strict';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { startSystem, type System } from '../../cli/system.ts';
import type { EventDoc } from '../../core/documents.ts';
import { pino } from 'pino';
import { hashTree } from '../../core/tree-hash.ts';
import { readRouting } from '../../core/routing-store.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';
import { launchTemporalDev, temporalReady } from '../../stack/temporal.ts';
import { McpTraffic } from '../support/mcp-traffic.ts';
import { addSampleService } from '../support/sample-service.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { connectTemporal } from '../../core/temporal-connection.ts';

// This file stops Temporal, so it runs a Temporal dev server of its own (MongoDB is the shared one).
const SERVICE = 'outage';
let temporal: ManagedProcess;
let temporalPort: number;
let config: ReturnType<typeof testConfig>;
let system: System;
/** What the system logs at error level: the test sees the watcher fail to hand a save to Temporal. */
const errorLogs: Array<{ msg: string; service?: string }> = [];

async function startTemporal(): Promise<void> {
  temporal = launchTemporalDev({ stateDir: config.stateDir, port: temporalPort, uiPort: await freePort(), namespace: config.temporal.namespace });
  await temporal.waitUntil(() => temporalReady(`127.0.0.1:${temporalPort}`, config.temporal.namespace), 60_000, 'Temporal answering');
}

before(async () => {
  temporalPort = await freePort();
  config = testConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`, MCPSHIP_API_PORT: String(await freePort()), MCPSHIP_DEBOUNCE_MS: '100' });
  await startTemporal();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) errorLogs.push(JSON.parse(line));
      done();
    },
  });
  system = await startSystem(config, pino({ level: 'error' }, sink), { worker: true, api: true });
});

after(async () => {
  await system.stop();
  await temporal.stop();
});

const since = (afterSeq: number) => system.events.list({ service: SERVICE, afterSeq, limit: 500 });
const waitForEvent = (match: (e: EventDoc) => boolean, what: string, afterSeq = 0) => waitFor(what, async () => (await since(afterSeq)).find(match), 180_000, 250);

test('with Temporal stopped the gateway keeps routing on the last weights, and the rollout goes on once it is back', async () => {
  const dir = await addSampleService({ sample: 'calculator', service: SERVICE, servicesDir: config.servicesDir, stateDir: config.stateDir, manifest: { rollout: { steps: [50, 100], intervalSec: 8 } } });
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.0', 'the first version to go live');

  const from = await system.events.lastSeq();
  await writeFile(path.join(dir, 'src', 'note.js'), 'export const note = 2;\n');
  await waitForEvent((e) => e.kind === 'CANARY_STEP' && e.version === '1.0.1', 'the canary step at 50%', from);

  // A new session every 2 calls, so that many sessions are opened while Temporal is down.
  const traffic = new McpTraffic(`${system.api!.url}/mcp/${SERVICE}`, 2, 20, 2);
  await temporal.stop();
  const okAtStop = traffic.report.ok;
  const sessionsAtStop = { ...traffic.report.sessionsByVersion };
  const openedSinceStop = (version: string) => (traffic.report.sessionsByVersion[version] ?? 0) - (sessionsAtStop[version] ?? 0);
  await waitFor('traffic to go on without Temporal', () => traffic.report.ok > okAtStop + 50);
  // What the gateway does, not only what MongoDB holds: new sessions still follow the 50/50 split.
  await waitFor('sessions opened during the outage to land on both versions', () => openedSinceStop('1.0.0') > 0 && openedSinceStop('1.0.1') > 0).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(traffic.report.sessionsByVersion)} now, ${JSON.stringify(sessionsAtStop)} at the stop`);
  });
  const routing = await readRouting(system.store, SERVICE);
  assert.deepEqual({ ...routing.weights }, { '1.0.0': 50, '1.0.1': 50 }, 'the last weights still hold');

  await startTemporal();
  await waitForEvent((e) => e.kind === 'PROMOTED' && e.version === '1.0.1', 'the rollout to finish after Temporal is back', from);
  const report = await traffic.stop();
  assert.equal(report.failed, 0, `client errors: ${report.errors.join(' | ')}`);
  assert.equal((await since(from)).filter((e) => e.kind === 'PROMOTED').length, 1);
  assert.equal((await readRouting(system.store, SERVICE)).stable, '1.0.1');
});

test('a single save made while Temporal is stopped is validated once it is back, without another save', async () => {
  const service = 'outage-save';
  const dir = path.join(config.servicesDir, service);
  // Trivial steps: what is under test is the delivery of the save, not the validation.
  const noop = { run: 'node --version' };
  // Written beside the services root and moved in whole: one change, not one per file.
  const draft = path.join(config.stateDir, service);
  await mkdir(draft, { recursive: true });
  await writeFile(path.join(draft, 'index.js'), 'export const v = 1;\n');
  await writeFile(
    path.join(draft, 'mcp.json'),
    JSON.stringify({ name: service, version: '1.0.0', transport: 'stdio', start: { command: 'node', args: ['index.js'] }, steps: { lint: noop, test: noop, build: noop }, rollout: { autoDeploy: false } }),
  );
  await rename(draft, dir);
  const staged = (hash: string, from: number) => waitFor(`the save ${hash.slice(0, 12)} to be staged`, async () => (await system.events.list({ service, afterSeq: from, limit: 500 })).find((e) => e.kind === 'STAGED' && e.details?.hash === hash), 180_000, 250);
  await staged((await hashTree(dir)).hash, 0);

  const from = await system.events.lastSeq();
  await temporal.stop();
  await writeFile(path.join(dir, 'index.js'), 'export const v = 2;\n');
  const { hash } = await hashTree(dir);
  await waitFor('the watcher to fail to hand the save over', () => errorLogs.some((l) => l.service === service && l.msg.startsWith('change could not be delivered')), 180_000, 250);

  await startTemporal();
  const event = await staged(hash, from);
  assert.equal(event.version, '1.0.1');
  const validating = (await system.events.list({ service, afterSeq: from, limit: 500 })).filter((e) => e.kind === 'VALIDATING');
  assert.deepEqual(validating.map((e) => e.details?.hash), [hash], 'the one save, validated once');
  assert.ok((validating[0]!.details?.changedPaths as string[]).includes('index.js'));
});

test('closing the Temporal connection while a call is being retried ends that call with its error, not the process', async () => {
  const { connection, close } = await connectTemporal(`127.0.0.1:${temporalPort}`);
  await temporal.stop();
  const uncaught: Error[] = [];
  const onUncaught = (err: Error) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    const call = connection.workflowService.getSystemInfo({}).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    // The SDK retries UNAVAILABLE from a timer: let it schedule a few before closing.
    await new Promise((r) => setTimeout(r, 1_000));
    await close();
    assert.notEqual(await call, 'answered');
    // Past any retry the SDK could still have had scheduled (at most 5 s plus jitter).
    await new Promise((r) => setTimeout(r, 6_500));
    assert.deepEqual(uncaught.map((e) => e.message), [], 'no retry ran on the shut channel');
  } finally {
    process.off('uncaughtException', onUncaught);
    await startTemporal();
  }
});
