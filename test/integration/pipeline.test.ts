import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { EventDoc } from '../../core/documents.ts';
import type { EventStore } from '../../core/events.ts';
import type { Store } from '../../core/mongo.ts';
import type { ServiceWorkflowState } from '../../core/pipeline.ts';
import { hashTree } from '../../core/tree-hash.ts';
import { serviceWorkflowId } from '../../core/workflow-ids.ts';
import { signalSave } from '../../watcher/save-signaller.ts';
import { startWorker, type WorkerHandle } from '../../workers/create-worker.ts';
import { recordHistory } from '../support/histories.ts';
import { startPipelineParts } from '../support/pipeline-parts.ts';
import { processesMentioning } from '../support/processes.ts';
import { addSampleService, editJson } from '../support/sample-service.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { startWorkerProcess } from '../support/worker-process.ts';

const config = testConfig();
const { temporalAddress } = stackAddresses();
let store: Store;
let events: EventStore;
let worker: WorkerHandle | undefined;
let connection: Connection;
let client: Client;

before(async () => {
  ({ store, events, worker, connection, client } = await startPipelineParts(config));
});

after(async () => {
  if (process.env.MCPSHIP_RECORD_HISTORIES) await recordHistories(['good', 'slow', 'broken-hang', 'broken-manifest', 'crash']);
  for (const { workflowId } of await listOpen()) await client.workflow.getHandle(workflowId).terminate('test over').catch(() => {});
  await worker?.shutdown();
  await connection.close();
  await store.close();
});

/** Keeps real histories in the repo for the replay test (run with MCPSHIP_RECORD_HISTORIES=1). */
async function recordHistories(services: string[]): Promise<void> {
  for (const service of services) await recordHistory(client, serviceWorkflowId(service), `service-workflow-${service}`);
}

async function listOpen(): Promise<{ workflowId: string }[]> {
  const out: { workflowId: string }[] = [];
  for await (const wf of client.workflow.list({ query: `TaskQueue = '${config.temporal.taskQueue}' AND ExecutionStatus = 'Running'` })) out.push(wf);
  return out;
}

/** A copy of a sample service under the test's services root. */
function addService(name: string, sample = 'hello-world'): Promise<string> {
  // The pipeline alone: staged versions are not deployed here (deployment.test.ts does that).
  return addSampleService({ sample, service: name, servicesDir: config.servicesDir, stateDir: config.stateDir, manifest: { rollout: { autoDeploy: false } } });
}

/** What the watcher would do after a save: hash the tree and signal the workflow. */
async function save(service: string): Promise<string> {
  const { hash } = await hashTree(path.join(config.servicesDir, service));
  await signalSave(client, config, service, { hash, changedPaths: ['src/server.js'], at: new Date().toISOString() });
  return hash;
}

const kinds = async (service: string) => (await events.list({ service, limit: 500 })).map((e) => e.kind);

function waitForEvent(service: string, match: (e: EventDoc) => boolean, what: string, timeoutMs = 120_000): Promise<EventDoc> {
  return waitFor(what, async () => (await events.list({ service, limit: 500 })).find(match), timeoutMs, 200);
}

const outcome = (service: string, hash: string) =>
  waitForEvent(service, (e) => ['STAGED', 'VALIDATION_FAILED', 'ALREADY_STAGED'].includes(e.kind) && (e.details as { hash?: string })?.hash === hash, `the outcome of ${hash.slice(0, 8)}`);

const { EventType } = proto.temporal.api.enums.v1;

/** Save signals of the current run that a completed workflow task has seen (their handler and what followed ran). */
async function signalsTaken(service: string): Promise<number> {
  const events = (await client.workflow.getHandle(serviceWorkflowId(service)).fetchHistory()).events ?? [];
  const types = events.map((e) => e.eventType);
  const lastCompleted = types.lastIndexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
  return types.slice(0, lastCompleted + 1).filter((t) => t === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED).length;
}

const queryState = (service: string) => client.workflow.getHandle(serviceWorkflowId(service)).query<ServiceWorkflowState>('state');

describe('a good save', () => {
  test('is validated and staged as an immutable version with its metadata', async () => {
    await addService('good');
    const hash = await save('good');
    const staged = await outcome('good', hash);
    assert.equal(staged.kind, 'STAGED');
    assert.equal(staged.version, '1.0.0');

    const order = await kinds('good');
    for (const k of ['VALIDATING', 'LINT_STARTED', 'LINT_COMPLETE', 'TEST_COMPLETE', 'BUILD_COMPLETE', 'STAGED']) assert.ok(order.includes(k), `event ${k}`);
    assert.ok(order.indexOf('LINT_COMPLETE') < order.indexOf('TEST_STARTED') && order.indexOf('TEST_COMPLETE') < order.indexOf('BUILD_STARTED'));

    const doc = await store.versions.findOne({ service: 'good', version: '1.0.0' });
    assert.ok(doc);
    assert.equal(doc.state, 'STAGED');
    assert.equal(doc.hash, hash);
    assert.deepEqual(doc.steps.map((s) => [s.step, s.ok]), [['lint', true], ['test', true], ['build', true]]);
    assert.ok(doc.steps.every((s) => s.durationMs > 0));
    assert.equal(doc.tools.node, process.version);
    assert.ok(doc.files.includes('src/server.js') && doc.files.includes('mcp.json'));

    const stagedDir = path.join(config.stateDir, 'staged', 'good', '1.0.0');
    assert.equal(doc.stagedDir, stagedDir);
    const metadata = JSON.parse(await readFile(path.join(stagedDir, 'metadata.json'), 'utf8'));
    assert.equal(metadata.hash, hash);
    assert.equal((await stat(path.join(stagedDir, 'src', 'server.js'))).mode & 0o222, 0, 'staged files are read-only');
    assert.equal((await stat(stagedDir)).mode & 0o222, 0, 'the staged folder is read-only');
    assert.ok((await stat(path.join(stagedDir, 'dist', 'index.js'))).isFile(), 'the build output is staged');

    // The service's last validation is recorded just after the STAGED event.
    const service = await waitFor('the validation to be recorded', async () => {
      const doc = await store.services.findOne({ name: 'good' });
      return doc?.lastValidation?.hash === hash ? doc : undefined;
    });
    assert.equal(service?.lastValidation?.ok, true);
    assert.equal(service?.lastValidation?.version, '1.0.0');
  });

  test('identical content starts nothing', async () => {
    const before = (await kinds('good')).filter((k) => k === 'VALIDATING').length;
    const stateBefore = await queryState('good');
    const signalsBefore = await signalsTaken('good');
    await save('good');
    // A query right after the signal may be answered before the workflow has seen the save.
    await waitFor('the workflow to have handled the save', async () => (await signalsTaken('good')) > signalsBefore || undefined);
    const state = await queryState('good');
    assert.equal(state.phase, 'idle');
    assert.equal(state.savesHandled, stateBefore.savesHandled, 'not counted as a save handled');
    assert.equal(state.lastHash, stateBefore.lastHash);
    assert.equal((await kinds('good')).filter((k) => k === 'VALIDATING').length, before);
  });

  test('a new save without a version bump gets the next patch; a bumped manifest keeps its version', async () => {
    const dir = path.join(config.servicesDir, 'good');
    await writeFile(path.join(dir, 'src', 'extra.js'), 'export const extra = 1;\n');
    const second = await outcome('good', await save('good'));
    assert.equal(second.version, '1.0.1');
    await editJson(path.join(dir, 'mcp.json'), (m) => (m.version = '2.0.0'));
    const third = await outcome('good', await save('good'));
    assert.equal(third.version, '2.0.0');
  });
});

describe('a broken save fails with the reason and stages nothing', () => {
  const cases: [string, (dir: string) => Promise<void>, RegExp, string][] = [
    ['lint', (dir) => writeFile(path.join(dir, 'src', 'broken.js'), 'const unused = 1;\nexport const n = /** @type {number} */ ("x");\n'), /lint failed/, 'LINT_FAILED'],
    ['test', (dir) => writeFile(path.join(dir, 'test', 'broken.test.js'), "import { test } from 'node:test';\nimport assert from 'node:assert';\ntest('x', () => assert.equal(1, 2));\n"), /test failed/, 'TEST_FAILED'],
    ['build', (dir) => editJson(path.join(dir, 'mcp.json'), (m) => (m.steps.build.run = 'npm run --silent no-such-script')), /build failed: .*no-such-script/, 'BUILD_FAILED'],
    ['manifest', (dir) => writeFile(path.join(dir, 'mcp.json'), '{ "name": "broken-manifest", "transport": "carrier-pigeon" }'), /mcp\.json: .*transport/, 'VALIDATION_FAILED'],
    ['hang', (dir) => editJson(path.join(dir, 'mcp.json'), (m) => (m.steps.test = { run: 'node -e "setInterval(() => {}, 1000)" hang-marker', timeoutSec: 2 })), /test timed out after 2 s/, 'TEST_FAILED'],
  ];
  for (const [what, breakIt, reason, kind] of cases) {
    test(`a broken ${what}`, async () => {
      const name = `broken-${what}`;
      const dir = await addService(name);
      await breakIt(dir);
      const hash = await save(name);
      const failed = await outcome(name, hash);
      assert.equal(failed.kind, 'VALIDATION_FAILED');
      assert.match(String((failed.details as { reason: string }).reason), reason);
      assert.ok((await kinds(name)).includes(kind), `a ${kind} event`);
      assert.equal(await store.versions.countDocuments({ service: name }), 0, 'nothing is staged');
      const service = await store.services.findOne({ name });
      assert.equal(service?.lastValidation?.ok, false);
      if (what === 'hang') assert.deepEqual(processesMentioning('hang-marker'), [], 'the hanging test was ended');
    });
  }
});

test('a newer save cancels a running validation, ends its processes, and the newest content is validated', async () => {
  const dir = await addService('slow');
  await editJson(path.join(dir, 'mcp.json'), (m) => (m.steps.test = { run: 'node -e "setTimeout(() => {}, 120000)" slow-marker-1', timeoutSec: 300 }));
  const first = await save('slow');
  await waitForEvent('slow', (e) => e.kind === 'TEST_STARTED', 'the slow test to start');
  await waitFor('the slow test process', () => processesMentioning('slow-marker-1').length > 0);

  await editJson(path.join(dir, 'mcp.json'), (m) => (m.steps.test = { run: 'npm run --silent test', timeoutSec: 300 }));
  const second = await save('slow');
  assert.notEqual(first, second);
  const staged = await outcome('slow', second);
  assert.equal(staged.kind, 'STAGED');
  const cancelled = (await events.list({ service: 'slow', kind: 'VALIDATION_CANCELLED' }))[0];
  assert.equal((cancelled?.details as { hash?: string })?.hash, first);
  assert.deepEqual(processesMentioning('slow-marker-1'), [], 'no orphan process');
  assert.equal(await store.versions.countDocuments({ service: 'slow' }), 1);
});

test('a service with a lock file is installed once; later snapshots with the same lock file reuse the install', async () => {
  const dir = await addService('deps');
  // No packages of its own (imports resolve from the checkout), but a lock file, so install runs.
  await editJson(path.join(dir, 'package.json'), (p) => {
    delete p.dependencies;
    delete p.devDependencies;
  });
  await writeFile(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'hello-world', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'hello-world', version: '1.0.0' } } }, null, 2));
  const first = await outcome('deps', await save('deps'));
  assert.equal(first.kind, 'STAGED');
  const doc = await store.versions.findOne({ service: 'deps' });
  assert.deepEqual(doc?.steps.map((s) => s.step), ['install', 'lint', 'test', 'build']);

  await writeFile(path.join(dir, 'src', 'extra.js'), 'export const extra = 1;\n');
  const secondHash = await save('deps');
  const second = await outcome('deps', secondHash);
  assert.equal(second.kind, 'STAGED');
  const installs = (await events.list({ service: 'deps', kind: 'INSTALL_STARTED' })).map((e) => (e.details as { hash: string }).hash);
  assert.equal(installs.length, 1, 'the second snapshot linked the cached install');
  const latest = await store.versions.findOne({ service: 'deps', hash: secondHash });
  assert.deepEqual(latest?.steps.map((s) => s.step), ['lint', 'test', 'build']);
});

test('the worker killed in the middle of a validation: another worker finishes the run', async () => {
  await worker?.shutdown();
  worker = undefined;
  const launchWorker = () => startWorkerProcess(config);

  const dir = await addService('crash');
  // The first run of the step never ends by itself (only a kill ends it); a rerun finds the flag
  // the first one left and goes straight on to the real tests.
  const flag = path.join(config.stateDir, 'crash-marker-ran');
  const marker = `node -e "const fs=require('fs');const f=process.argv[2];if(fs.existsSync(f))process.exit(0);fs.writeFileSync(f,'');setInterval(()=>{},1000)" crash-marker ${flag}`;
  await editJson(path.join(dir, 'mcp.json'), (m) => (m.steps.test = { run: `${marker} && npm run --silent test`, timeoutSec: 300 }));
  const first = launchWorker();
  const hash = await save('crash');
  await waitForEvent('crash', (e) => e.kind === 'TEST_STARTED', 'the test step to start');
  const [orphan] = await waitFor('the marker process', () => {
    const pids = processesMentioning('crash-marker');
    return pids.length > 0 && pids;
  });
  first.kill('SIGKILL');
  // The process's exit, not execa's promise: that also waits for the output pipes, which the
  // orphaned step inherited and holds open until the next worker ends it.
  await waitFor('the worker to die', () => first.exitCode !== null || first.signalCode !== null);
  assert.ok(processesMentioning('crash-marker').includes(orphan!), 'the killed worker left its step running');

  const second = launchWorker();
  try {
    // The new worker ends it as it starts, before it polls for tasks (a worker process can take a while to start on a loaded machine).
    await waitFor('the new worker to end its predecessor\'s step', () => !processesMentioning('crash-marker').includes(orphan!), 180_000, 250);
    const staged = await outcome('crash', hash);
    assert.equal(staged.kind, 'STAGED', JSON.stringify(staged.details));
    const testStarts = (await kinds('crash')).filter((k) => k === 'TEST_STARTED').length;
    assert.ok(testStarts >= 2, 'the test step ran again on the new worker');
    assert.equal(await store.versions.countDocuments({ service: 'crash' }), 1);
  } finally {
    second.kill('SIGTERM');
    await second;
    // Not left behind by a failed run.
    for (const pid of processesMentioning('crash-marker')) process.kill(pid, 'SIGKILL');
    worker = await startWorker(temporalAddress, { config, store, events });
  }
});

test('the workflow continues as new after its save budget and keeps what it knows', async () => {
  const dir = await addService('long');
  const handle = await client.workflow.start('serviceWorkflow', {
    workflowId: serviceWorkflowId('long'),
    taskQueue: config.temporal.taskQueue,
    args: [{ service: 'long', maxSavesPerRun: 2 }],
  });
  const firstRun = handle.firstExecutionRunId;
  const hashes: string[] = [];
  for (let i = 0; i < 3; i++) {
    await writeFile(path.join(dir, 'src', 'n.js'), `export const n = ${i};\n`);
    const hash = await save('long');
    hashes.push(hash);
    await outcome('long', hash);
  }
  const description = await client.workflow.getHandle(serviceWorkflowId('long')).describe();
  assert.notEqual(description.runId, firstRun, 'a new run');
  // STAGED is recorded inside the staging activity; the run counts the save once the validation is recorded after it.
  const state = await waitFor('the third save to be counted', async () => {
    const s = await queryState('long');
    return s.savesHandled >= 3 ? s : undefined;
  });
  assert.equal(state.savesHandled, 3);
  assert.equal(state.lastHash, hashes[2]);
});
