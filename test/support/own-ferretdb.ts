import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';

/** A FerretDB of one test's own, for stopping and starting it: the stack's serves every other file. */
export interface OwnFerretdb {
  uri: string;
  /** Its temp folder; a test may keep files of its own there (a capture spill), removed with it. */
  dir: string;
  stop(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it and removes its folder (for after()). */
  remove(): Promise<void>;
}

/** Starts a FerretDB in a temp folder named after `name`, on free ports; resolves once it answers. */
export async function startOwnFerretdb(name: string): Promise<OwnFerretdb> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `mcpship-${name}-`));
  const port = await freePort();
  const debugPort = await freePort();
  const uri = `mongodb://127.0.0.1:${port}/`;
  let ferret: ManagedProcess | undefined;
  const start = async (what: string) => {
    ferret = launchFerretdb({ stateDir: dir, port, debugPort });
    await ferret.waitUntil(() => mongoReady(uri), 60_000, what);
  };
  const own: OwnFerretdb = {
    uri,
    dir,
    stop: async () => {
      await ferret?.stop();
    },
    restart: () => start('FerretDB answers ping again'),
    remove: async () => {
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await start('FerretDB answers ping');
  } catch (err) {
    await own.remove();
    throw err;
  }
  return own;
}
