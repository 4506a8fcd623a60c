import type { Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { EventStore } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { signalSave } from './save-signaller.ts';
import { watchServices, type ServiceWatcher } from './service-watcher.ts';

/**
 * Watches the services root and turns each real change into a signal to the service's workflow;
 * added and removed service folders are recorded as events and in the services collection.
 */
export async function startWatcher(deps: { config: Config; store: Store; events: EventStore; client: Client; log: Logger }): Promise<ServiceWatcher> {
  const { config, store, events, client } = deps;
  const log = deps.log.child({ component: 'watcher' });
  const knownHashes = new Map(
    (await store.services.find({ state: 'PRESENT', lastHash: { $exists: true } }).toArray()).map((s) => [s.name, s.lastHash!] as const),
  );
  const setPresence = async (name: string, state: 'PRESENT' | 'REMOVED') => {
    const { upsertedCount, modifiedCount } = await store.services.updateOne(
      { name },
      { $set: { state, updatedAt: new Date() }, $setOnInsert: { name } },
      { upsert: true },
    );
    if (upsertedCount || modifiedCount) await events.append({ service: name, kind: state === 'PRESENT' ? 'SERVICE_ADDED' : 'SERVICE_REMOVED', status: 'info' });
  };
  const watcher = watchServices({
    root: config.servicesDir,
    debounceMs: config.watcher.debounceMs,
    log,
    knownHashes,
    onServiceAdded: (name) => setPresence(name, 'PRESENT'),
    onServiceRemoved: (name) => setPresence(name, 'REMOVED'),
    // A rejection (Temporal unreachable) makes the watcher retry the change until it is delivered.
    onChange: (change) => signalSave(client, config, change.service, { hash: change.hash, changedPaths: change.changedPaths, at: change.at }),
  });
  await watcher.ready();
  return watcher;
}
