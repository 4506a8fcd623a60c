import { startApi, type ApiHandle } from '../api/server.ts';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { Client } from '@temporalio/client';
import { connectTemporal } from '../core/temporal-connection.ts';
import { EventStore } from '../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../core/mongo.ts';
import { startRetention } from '../core/retention.ts';
import { startStack, type Stack } from '../stack/start-stack.ts';
import { startAlertEvaluator } from '../alerts/evaluator.ts';
import { Runner } from '../runner/runner.ts';
import { startWatcher } from '../watcher/start-watcher.ts';
import { startWorker, type WorkerHandle } from '../workers/create-worker.ts';

export interface SystemParts {
  /** The Temporal worker, and beside it the file watcher and the alert evaluator. */
  worker: boolean;
  /** A runner node (instance pools; runner/runner.ts); by default, with the worker. */
  runner?: boolean;
  api: boolean;
}

export interface System {
  stack: Stack;
  store: Store;
  events: EventStore;
  worker?: WorkerHandle;
  api?: ApiHandle;
  stop(): Promise<void>;
}

/** The composition root: stack, store, then the worker and the API as asked; stops in reverse order. */
export async function startSystem(config: Config, log: Logger, parts: SystemParts): Promise<System> {
  const stack = await startStack(config, log);
  const cleanups: (() => Promise<void>)[] = [() => stack.stop()];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) => log.error({ err }, 'error while stopping'));
    }
    cleanups.length = 0;
  };
  try {
    const store = await connectStore(stack.mongoUri, config.mongo.database);
    cleanups.push(() => store.close());
    await ensureIndexes(store);
    const retention = startRetention(store, config.retention, log.child({ component: 'retention' }));
    cleanups.push(() => retention.stop());
    const events = new EventStore(store);
    const { connection, close: closeConnection } = await connectTemporal(stack.temporalAddress);
    cleanups.push(closeConnection);
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const system: System = { stack, store, events, stop };
    if (parts.runner ?? parts.worker) {
      const runner = new Runner({ config, store, mongoUri: stack.mongoUri, events, log: log.child({ component: 'runner' }) });
      await runner.start();
      cleanups.push(() => runner.stop());
    }
    if (parts.worker) {
      system.worker = await startWorker(stack.temporalAddress, { config, store, events, temporal: client });
      cleanups.push(() => system.worker!.shutdown());
      const watcher = await startWatcher({ config, store, events, client, log });
      cleanups.push(() => watcher.close());
      if (config.alerts.enabled) {
        const host = config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host;
        const evaluator = startAlertEvaluator({ config, store, events, temporal: client, log: log.child({ component: 'alerts' }), dashboardUrl: `http://${host}:${config.api.port}/` });
        cleanups.push(() => evaluator.stop());
      }
    }
    if (parts.api) {
      system.api = await startApi({
        config,
        store,
        events,
        log,
        temporal: client,
        temporalAddress: stack.temporalAddress,
        ...(stack.temporalUiUrl ? { temporalUiUrl: stack.temporalUiUrl } : {}),
      });
      cleanups.push(() => system.api!.close());
    }
    return system;
  } catch (err) {
    await stop();
    throw err;
  }
}
