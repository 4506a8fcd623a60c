/**
 * stageVersion under Temporal's own retries, on the real stack: an attempt that stored the version
 * but failed on its STAGED event must not make the retry report "existing" (the service workflow
 * would then skip auto-deploy); another save of the same content still does.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { versionActivities } from '../../activities/versions.ts';
import type { Config } from '../../core/config.ts';
import { EventStore, type NewEvent } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import type { StageInput, StageResult } from '../../core/pipeline.ts';
import { stackAddresses, testConfig } from '../support/stack-env.ts';

const workflowsPath = fileURLToPath(new URL('../fixtures/workflows/stage-version.ts', import.meta.url));

/** Events as usual, except that the next STAGED append fails: before writing, or after (a lost reply). */
class FlakyEvents extends EventStore {
  failNext: 'before' | 'after' | undefined;
  override async append(event: NewEvent) {
    const mode = event.kind === 'STAGED' ? this.failNext : undefined;
    if (mode) this.failNext = undefined;
    if (mode === 'before') throw new Error('MongoDB went away (injected)');
    const doc = await super.append(event);
    if (mode === 'after') throw new Error('reply lost after the write (injected)');
    return doc;
  }
}

let config: Config;
let store: Store;
let events: FlakyEvents;
let connection: Connection;
let client: Client;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  config = testConfig();
  const { temporalAddress, mongoUri } = stackAddresses();
  store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
  events = new FlakyEvents(store);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const native = await NativeConnection.connect({ address: temporalAddress });
  worker = await Worker.create({
    connection: native,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    workflowsPath,
    activities: { stageVersion: versionActivities({ config, store, events }).stageVersion },
  });
  running = worker.run().finally(() => native.close());
  connection = await Connection.connect({ address: temporalAddress });
  client = new Client({ connection, namespace: config.temporal.namespace });
});

after(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await store?.db.dropDatabase();
  await store?.close();
});

async function snapshot(name: string, content: string): Promise<StageInput> {
  const dir = path.join(config.stateDir, 'snapshots', name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.js'), content);
  return { service: 'svc', hash: `hash-${name}`, dir, files: ['index.js'], manifestVersion: '1.0.0', changedPaths: ['index.js'], steps: [] };
}

let runs = 0;
const stage = (input: StageInput): Promise<StageResult> =>
  client.workflow.execute('stageOnly', { taskQueue: config.temporal.taskQueue, workflowId: `stage-${++runs}`, args: [input] });

const stagedEvents = async (version: string) => store.events.countDocuments({ service: 'svc', version, kind: 'STAGED' });

for (const when of ['before', 'after'] as const) {
  test(`the STAGED event fails ${when} its write on the first attempt: the retry still reports a new version, announced once`, async () => {
    const input = await snapshot(`fails-${when}`, `export const v = '${when}';\n`);
    events.failNext = when;
    const result = await stage(input);
    assert.equal(events.failNext, undefined, 'the fault was injected');
    assert.equal(result.existing, false, 'a retry of the same activity is not a repeat of the content');
    assert.equal(await stagedEvents(result.version), 1);
    assert.equal(await store.versions.countDocuments({ service: 'svc', hash: input.hash }), 1);

    const again = await stage(input);
    assert.deepEqual(again, { ...result, existing: true }, 'another save of the same content is a repeat');
    assert.equal(await stagedEvents(result.version), 1);
  });
}
