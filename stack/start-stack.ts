import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { launchFerretdb, mongoReady } from './ferretdb.ts';
import type { ManagedProcess } from './managed-process.ts';
import { assertPortFree, freePort } from './ports.ts';
import { ensureSearchAttributes, launchTemporalDev, temporalReady } from './temporal.ts';

export interface Stack {
  temporalAddress: string;
  mongoUri: string;
  /** Temporal Web UI, when the embedded dev server runs it. */
  temporalUiUrl?: string;
  /** The processes this stack started: none when both pieces were given by the environment. */
  processes: ManagedProcess[];
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

export interface StackOptions {
  /** Namespaces the embedded Temporal creates besides the configured one, each with mcpship's search attributes. */
  extraNamespaces?: readonly string[];
}

async function startTemporal(config: Config, log: Logger, opts: StackOptions): Promise<{ address: string; uiUrl?: string; process?: ManagedProcess }> {
  const { namespace } = config.temporal;
  if (config.temporal.address) {
    log.info({ address: config.temporal.address }, 'TEMPORAL_ADDRESS set: using that Temporal, not starting one');
    await ensureSearchAttributes(config.temporal.address, namespace);
    return { address: config.temporal.address, ...(config.temporal.uiUrl ? { uiUrl: config.temporal.uiUrl } : {}) };
  }
  const { port, uiPort } = config.temporal;
  await assertPortFree('127.0.0.1', port, 'the Temporal frontend', 'MCPSHIP_TEMPORAL_PORT');
  await assertPortFree('127.0.0.1', uiPort, 'Temporal Web UI', 'MCPSHIP_TEMPORAL_UI_PORT');
  const address = `127.0.0.1:${port}`;
  const extraNamespaces = opts.extraNamespaces ?? [];
  const process = launchTemporalDev({ stateDir: config.stateDir, port, uiPort, namespace, extraNamespaces });
  log.info({ address, pid: process.pid }, 'starting Temporal dev server');
  await process.waitUntil(() => temporalReady(address, namespace), READY_TIMEOUT_MS, `namespace "${namespace}" answering`);
  for (const ns of [namespace, ...extraNamespaces]) await ensureSearchAttributes(address, ns);
  return { address, uiUrl: `http://127.0.0.1:${uiPort}`, process };
}

async function startMongo(config: Config, log: Logger): Promise<{ uri: string; process?: ManagedProcess }> {
  if (config.mongo.uri) {
    log.info('MONGODB_URI set: using that MongoDB, not starting FerretDB');
    return { uri: config.mongo.uri };
  }
  const { port } = config.mongo;
  await assertPortFree('127.0.0.1', port, 'the MongoDB-wire server (FerretDB)', 'MCPSHIP_MONGO_PORT');
  const uri = `mongodb://127.0.0.1:${port}/`;
  const process = launchFerretdb({ stateDir: config.stateDir, port, debugPort: await freePort() });
  log.info({ uri, pid: process.pid }, 'starting FerretDB');
  await process.waitUntil(() => mongoReady(uri), READY_TIMEOUT_MS, 'ping answering');
  return { uri, process };
}

/**
 * Brings up Temporal and the MongoDB-wire server on the embedded defaults, or uses the ones named
 * by TEMPORAL_ADDRESS / MONGODB_URI. On any failure, whatever was started is stopped again.
 */
export async function startStack(config: Config, log: Logger, opts: StackOptions = {}): Promise<Stack> {
  const processes: ManagedProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    const mongo = await startMongo(config, log);
    if (mongo.process) processes.push(mongo.process);
    const temporal = await startTemporal(config, log, opts);
    if (temporal.process) processes.push(temporal.process);
    return {
      temporalAddress: temporal.address,
      mongoUri: mongo.uri,
      ...(temporal.uiUrl ? { temporalUiUrl: temporal.uiUrl } : {}),
      processes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
