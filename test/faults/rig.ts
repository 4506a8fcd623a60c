/**
 * The fault suite's system: FerretDB and the Temporal dev server of its own (so they can be
 * stopped), the worker (with runner and watcher) and the API (with the gateway) as separate
 * processes (so they can be killed), and mcpship's state dir on a small tmpfs (so it can be filled).
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { cp, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { addSampleService } from '../support/sample-service.ts';
import type { Config } from '../../core/config.ts';
import type { EventDoc } from '../../core/documents.ts';
import { EventStore } from '../../core/events.ts';
import { connectStore, ensureIndexes, type Store } from '../../core/mongo.ts';
import { setTreeWritable } from '../../core/read-only.ts';
import { repoRoot } from '../../stack/binaries.ts';
import { launchFerretdb, mongoReady } from '../../stack/ferretdb.ts';
import type { ManagedProcess } from '../../stack/managed-process.ts';
import { freePort } from '../../stack/ports.ts';
import { ensureSearchAttributes, launchTemporalDev, temporalReady } from '../../stack/temporal.ts';
import { processesMentioning } from '../support/processes.ts';
import { testConfig } from '../support/stack-env.ts';
import { waitFor } from '../support/wait.ts';
import { startMcpshipProcess } from '../support/worker-process.ts';

export const SERVICE = 'faults-calc';
/** Guards a hang only: on a loaded two-core machine a save takes up to a few minutes to reach its end. */
export const GUARD_MS = 600_000;
const STATE_DISK_MB = 256;
const LOG_DIR = path.join(repoRoot, '.mcpship', 'faults-logs');

export const ROLLOUT = {
  autoDeploy: true,
  steps: [20, 60, 100],
  intervalSec: 6,
  analysis: { minRequests: 3, requireTraffic: false, minSuccessRate: 0.9, maxP99Ms: 10_000, maxFailedChecks: 1 },
};

/** Events that end a deployment. */
export function endsDeployment(e: EventDoc): boolean {
  return e.kind === 'PROMOTED' || e.kind === 'ROLLBACK_COMPLETE' || (/^DEPLOYMENT_[A-Z_]+$/.test(e.kind) && e.kind !== 'DEPLOYMENT_STARTED');
}

/** The file a save changes. */
const NOTE = path.join('src', 'note.js');

export class FaultRig {
  readonly root = path.join(repoRoot, '.mcpship', 'tmp-faults', `run-${process.pid}`);
  private readonly stackDir = path.join(this.root, 'stack');
  readonly stateDir = path.join(this.root, 'state');
  /** How the state disk was made: a tmpfs, or (without mount rights) a plain folder. */
  stateDisk = 'plain folder';
  config!: Config;
  store!: Store;
  events!: EventStore;
  private ferret?: ManagedProcess;
  private temporal?: ManagedProcess;
  private worker?: ResultPromise;
  private api?: ResultPromise;
  private mongoPort = 0;
  private temporalPort = 0;
  private saves = 0;

  get apiUrl(): string {
    return `http://127.0.0.1:${this.config.api.port}`;
  }

  get mcpUrl(): string {
    return `${this.apiUrl}/mcp/${SERVICE}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.stackDir, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${STATE_DISK_MB}m`, 'tmpfs', this.stateDir], { stdio: 'pipe' });
      this.stateDisk = `tmpfs of ${STATE_DISK_MB} MB`;
    } catch (err) {
      this.stateDisk = `plain folder (mount refused: ${String((err as Error).message).split('\n')[0]})`;
    }
    this.mongoPort = await freePort();
    this.temporalPort = await freePort();
    await this.startMongo();
    await this.startTemporal();
    // test/support reads the stack's addresses from these, as under test/run.ts.
    process.env.MCPSHIP_TEST_MONGODB_URI = `mongodb://127.0.0.1:${this.mongoPort}/`;
    process.env.MCPSHIP_TEST_TEMPORAL_ADDRESS = `127.0.0.1:${this.temporalPort}`;
    process.env.MCPSHIP_TEST_RUN_DIR = path.join(this.root, 'scratch');
    this.config = testConfig({
      MCPSHIP_STATE_DIR: this.stateDir,
      MCPSHIP_SERVICES_DIR: path.join(this.stateDir, 'services'),
      MCPSHIP_API_PORT: String(await freePort()),
      MCPSHIP_DEBOUNCE_MS: '100',
    });
    this.store = await connectStore(process.env.MCPSHIP_TEST_MONGODB_URI, this.config.mongo.database);
    await ensureIndexes(this.store);
    this.events = new EventStore(this.store);
    this.startWorker();
    await this.startApi();
  }

  async startMongo(): Promise<void> {
    this.ferret = launchFerretdb({ stateDir: this.stackDir, port: this.mongoPort, debugPort: await freePort() });
    await this.ferret.waitUntil(() => mongoReady(`mongodb://127.0.0.1:${this.mongoPort}/`), 60_000, 'ping answering');
  }

  async stopMongo(): Promise<void> {
    await this.ferret?.stop();
  }

  async startTemporal(): Promise<void> {
    const address = `127.0.0.1:${this.temporalPort}`;
    this.temporal = launchTemporalDev({ stateDir: this.stackDir, port: this.temporalPort, uiPort: await freePort(), namespace: 'default' });
    await this.temporal.waitUntil(() => temporalReady(address, 'default'), 60_000, 'Temporal answering');
    await ensureSearchAttributes(address, 'default');
  }

  async stopTemporal(): Promise<void> {
    await this.temporal?.stop();
  }

  startWorker(): void {
    this.worker = this.logged('worker', startMcpshipProcess('worker', this.config));
  }

  /** The process's output, appended to <checkout>/.mcpship/faults-logs/<name>.log (kept after the run, for diagnosis). */
  private logged(name: string, child: ResultPromise): ResultPromise {
    mkdirSync(LOG_DIR, { recursive: true });
    const file = createWriteStream(path.join(LOG_DIR, `${name}.log`), { flags: 'a' });
    file.write(`--- ${new Date().toISOString()} ${name} started\n`);
    child.stdout?.pipe(file, { end: false });
    child.stderr?.pipe(file, { end: false });
    return child;
  }

  /** SIGKILL, as a crash; returns once its instances are gone too (its guardian ends them). */
  async killWorker(): Promise<void> {
    this.worker?.kill('SIGKILL');
    await this.worker;
    await waitFor("the killed runner's instances to be ended by its guardian", () => processesMentioning(path.join(this.stateDir, 'staged')).length === 0, 60_000);
  }

  async startApi(): Promise<void> {
    this.api = this.logged('api', startMcpshipProcess('api', this.config));
    await waitFor('the API to answer', async () => (await fetch(`${this.apiUrl}/api/health`)).ok, GUARD_MS, 250);
  }

  async killApi(): Promise<void> {
    this.api?.kill('SIGKILL');
    await this.api;
  }

  /** Resolves with the events of the service after `afterSeq` up to the first that `match` accepts. */
  async waitForEvent(what: string, afterSeq: number, match: (e: EventDoc) => boolean): Promise<EventDoc> {
    return waitFor(what, async () => (await this.events.list({ service: SERVICE, afterSeq, limit: 1000 })).find(match), GUARD_MS, 500);
  }

  async addService(): Promise<void> {
    await addSampleService({ sample: 'calculator', service: SERVICE, servicesDir: this.config.servicesDir, stateDir: this.stateDir, manifest: { rollout: ROLLOUT }, patch: (dir) => writeFile(path.join(dir, NOTE), this.note()) });
  }

  private get notePath(): string {
    return path.join(this.config.servicesDir, SERVICE, NOTE);
  }

  /** Always the same length, so that a save can be written in place. */
  private note(): string {
    return `export const note = ${String(this.saves).padStart(8)};\n`;
  }

  /** A content change in the service folder, as an editor's save; returns the event seq before it. */
  async save(): Promise<number> {
    const from = await this.events.lastSeq();
    this.saves++;
    // In place: the service folder is on the state disk, and on a full one an editor's save still
    // lands in the blocks the file already has.
    const handle = await open(this.notePath, 'r+');
    try {
      await handle.write(this.note(), 0);
    } finally {
      await handle.close();
    }
    return from;
  }

  async stop(): Promise<void> {
    for (const child of [this.api, this.worker]) {
      child?.kill('SIGTERM');
      await child;
    }
    await this.store?.close().catch(() => {});
    await this.temporal?.stop();
    await this.ferret?.stop();
    for (const pid of processesMentioning(this.root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Instance, replay and validation logs live on the state disk, which goes with the run.
    await rm(path.join(LOG_DIR, 'state'), { recursive: true, force: true });
    await cp(path.join(this.stateDir, 'logs'), path.join(LOG_DIR, 'state'), { recursive: true }).catch(() => {});
    if (this.stateDisk.startsWith('tmpfs')) execFileSync('umount', ['-l', this.stateDir], { stdio: 'pipe' });
    await setTreeWritable(this.root, true).catch(() => {});
    rmSync(this.root, { recursive: true, force: true });
  }
}
