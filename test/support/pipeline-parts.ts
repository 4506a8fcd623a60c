import { Client, Connection } from '@temporalio/client';
import type { Config } from '../../core/config.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { startWorker, type WorkerHandle } from '../../workers/create-worker.ts';
import { stackAddresses } from './stack-env.ts';

export interface PipelineParts {
  store: Store;
  events: EventStore;
  worker: WorkerHandle;
  connection: Connection;
  client: Client;
}

/**
 * What a test that drives the service workflow itself (no watcher) needs on the test stack: the
 * store, an in-process worker and a Temporal client. The test closes each in its after().
 */
export async function startPipelineParts(config: Config): Promise<PipelineParts> {
  const { temporalAddress, mongoUri } = stackAddresses();
  const store = await connectStore(mongoUri, config.mongo.database);
  await ensureIndexes(store);
  const events = new EventStore(store);
  const worker = await startWorker(temporalAddress, { config, store, events });
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { store, events, worker, connection, client };
}
