import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { stackBinary } from './binaries.ts';
import { ManagedProcess } from './managed-process.ts';

export interface FerretdbOptions {
  stateDir: string;
  port: number;
  /** FerretDB's own debug/metrics HTTP listener; it needs a port of its own. */
  debugPort: number;
}

/** FerretDB on its embedded SQLite backend, data under <stateDir>/ferretdb. */
export function launchFerretdb(opts: FerretdbOptions): ManagedProcess {
  const dataDir = path.join(opts.stateDir, 'ferretdb');
  mkdirSync(dataDir, { recursive: true });
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dataDir}/`,
    `--state-dir=${dataDir}`,
    `--listen-addr=127.0.0.1:${opts.port}`,
    `--debug-addr=127.0.0.1:${opts.debugPort}`,
    '--telemetry=disable',
    '--log-level=warn',
  ];
  return new ManagedProcess('ferretdb', stackBinary('ferretdb'), args, path.join(opts.stateDir, 'logs'));
}

/** True once a real driver connection answers ping. */
export async function mongoReady(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    return true;
  } finally {
    await client.close();
  }
}
