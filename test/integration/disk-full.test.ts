/**
 * A save whose validation meets a full state disk is kept and goes out by itself once space returns.
 * The ENOSPC is real and needs no root: the step logs the save will write are links to /dev/full,
 * which refuses every write with ENOSPC; removing the links is the space coming back.
 */
import assert from 'node:assert/strict';
import { mkdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Client, Connection } from '@temporalio/client';
import { STEP_NAMES } from '../../core/manifest.ts';
import type { EventDoc } from '../../core/documents.ts';
import type { EventStore } from '../../core/events.ts';
import type { Store } from '../../core/mongo.ts';
import type { ServiceWorkflowState } from '../../core/pipeline.ts';
import { hashTree } from '../../core/tree-hash.ts';
import { serviceWorkflowId } from '../../core/workflow-ids.ts';
import { signalSave } from '../../watcher/save-signaller.ts';
import type { WorkerHandle } from '../../workers/create-worker.ts';
import { recordHistory } from '../support/histories.ts';
import { startPipelineParts } from '../support/pipeline-parts.ts';
import { addSampleService } from '../support/sample-service.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';

const config = testConfig();
const SERVICE = 'full-disk';
let store: Store;
let events: EventStore;
let worker: WorkerHandle;
let connection: Connection;
let client: Client;

before(async () => {
  ({ store, events, worker, connection, client } = await startPipelineParts(config));
});

after(async () => {
  if (process.env.MCPSHIP_RECORD_HISTORIES) await recordHistory(client, serviceWorkflowId(SERVICE), 'service-workflow-disk-full');
  await client.workflow.getHandle(serviceWorkflowId(SERVICE)).terminate('test over').catch(() => {});
  await worker.shutdown();
  await connection.close();
  await store.close();
});

const saveEvents = async (hash: string): Promise<EventDoc[]> =>
  (await events.list({ service: SERVICE, limit: 500 })).filter((e) => (e.details as { hash?: string } | undefined)?.hash === hash);

test('a save refused by a full disk waits (VALIDATION_WAITING once) and is staged when space returns, with no other save', async () => {
  const source = await addSampleService({ sample: 'hello-world', service: SERVICE, servicesDir: config.servicesDir, stateDir: config.stateDir, manifest: { rollout: { autoDeploy: false } } });
  const { hash } = await hashTree(source);
  const logDir = path.join(config.stateDir, 'logs', 'validation', SERVICE, hash.slice(0, 12));
  await mkdir(logDir, { recursive: true });
  const logs = ['install', ...STEP_NAMES].map((step) => path.join(logDir, `${step}.log`));
  for (const log of logs) await symlink('/dev/full', log);

  await signalSave(client, config, SERVICE, { hash, changedPaths: ['src/server.js'], at: new Date().toISOString() });
  const waiting = await waitFor('the save to wait for space', async () => (await saveEvents(hash)).find((e) => e.kind === 'VALIDATION_WAITING' || e.kind === 'VALIDATION_FAILED'), 300_000, 200);
  assert.equal(waiting.kind, 'VALIDATION_WAITING', JSON.stringify(waiting.details));
  assert.equal(waiting.status, 'info');
  assert.match(String((waiting.details as { reason?: string }).reason), /^writing the \w+ log of full-disk under .*: the disk is full: ENOSPC: .*; retrying when space returns$/);
  assert.equal((await client.workflow.getHandle(serviceWorkflowId(SERVICE)).query<ServiceWorkflowState>('state')).phase, 'waiting');

  for (const log of logs) await rm(log);
  const staged = await waitFor('the kept save to be staged', async () => (await saveEvents(hash)).find((e) => e.kind === 'STAGED' || e.kind === 'VALIDATION_FAILED'), 300_000, 200);
  assert.equal(staged.kind, 'STAGED', JSON.stringify(staged.details));
  const kinds = (await saveEvents(hash)).map((e) => e.kind);
  assert.equal(kinds.filter((k) => k === 'VALIDATION_WAITING').length, 1, kinds.join(' '));
  assert.equal(kinds.filter((k) => k === 'VALIDATING').length, 1, kinds.join(' '));
  assert.ok(!kinds.includes('VALIDATION_FAILED'), kinds.join(' '));
});
