/**
 * A FerretDB of its own for a database bench (no Temporal): its process's CPU is what the database
 * spends. The store has mcpship's indexes; cleanup drops the database and removes the state dir.
 */
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import { freePort } from '../../stack/ports.ts';
import { benchConfig, benchStateDir, onceCleanup, removeStateDir } from './common.ts';

export interface StandaloneFerretdb {
  stateDir: string;
  store: Store;
  /** FerretDB's pid, for processCpuMs. */
  pid: number;
  cleanup: () => Promise<void>;
}

export async function standaloneFerretdb(name: string): Promise<StandaloneFerretdb> {
  const stateDir = await benchStateDir(name);
  const config = await benchConfig(stateDir);
  const port = await freePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  const ferret = launchFerretdb({ stateDir, port, debugPort: await freePort() });
  await ferret.waitUntil(() => mongoReady(uri), 60_000, 'ping answering');
  const store = await connectStore(uri, config.mongo.database);
  const cleanup = onceCleanup(async () => {
    await store.db.dropDatabase().catch(() => {});
    await store.close();
    await ferret.stop();
    await removeStateDir(stateDir);
  });
  await ensureIndexes(store).catch(async (err: unknown) => {
    await cleanup();
    throw err;
  });
  return { stateDir, store, pid: ferret.pid!, cleanup };
}
