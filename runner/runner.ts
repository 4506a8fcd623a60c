/**
 * The runner: reconciles the desired pools in MongoDB (runner/desired-state.ts) into supervised
 * instances (runner/instance.ts). It polls, because the MongoDB-wire server embedded by default
 * has no change streams; reconcileNow() lets a caller in the same process skip the wait.
 *
 * One runner per database: instance ids are `<service>-<version>-<n>`, not qualified by host.
 */
import path from 'node:path';
import type { Config } from '../core/config.ts';
import type { PoolDoc } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';
import { Guardian } from './guardian.ts';
import { Instance, type InstanceSettings } from './instance.ts';
import { reapLeftovers } from './leftovers.ts';

export interface RunnerOptions {
  pollMs: number;
  killGraceMs: number;
  probeIntervalMs: number;
  stableMs: number;
  backoff: BackoffPolicy;
}

export const DEFAULT_RUNNER_OPTIONS: Readonly<RunnerOptions> = Object.freeze({
  pollMs: 500,
  killGraceMs: 5_000,
  probeIntervalMs: 250,
  stableMs: 30_000,
  backoff: DEFAULT_BACKOFF,
});

export interface RunnerDeps {
  config: Config;
  store: Store;
  events: EventStore;
  log: Logger;
  options?: Partial<RunnerOptions>;
}

interface Pool {
  service: string;
  version: string;
  /** Slot index -> instance; a slot being stopped stays here until it has stopped. */
  instances: Map<number, Instance>;
}

const poolKey = (service: string, version: string) => `${service}\u0000${version}`;

export class Runner {
  private readonly pools = new Map<string, Pool>();
  private readonly settings: InstanceSettings;
  private readonly guardian: Guardian;
  private readonly pollMs: number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  private current: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /**
   * Detached groups do not die with us. At an orderly exit (process.exit, an uncaught error) this
   * kills what still runs, at once; the guardian covers the deaths that run no code (signals).
   */
  private readonly killAll = () => {
    for (const pool of this.pools.values()) for (const instance of pool.instances.values()) instance.killNow();
  };

  constructor(private readonly deps: RunnerDeps) {
    const options = { ...DEFAULT_RUNNER_OPTIONS, ...deps.options };
    this.pollMs = options.pollMs;
    this.guardian = new Guardian(deps.log);
    this.settings = {
      drainMs: deps.config.runner.drainMs,
      readyTimeoutMs: deps.config.runner.readyTimeoutMs,
      killGraceMs: options.killGraceMs,
      probeIntervalMs: options.probeIntervalMs,
      stableMs: options.stableMs,
      backoff: options.backoff,
      logDir: path.join(deps.config.stateDir, 'logs', 'instances'),
    };
  }

  /** Ends what a previous runner left running, reconciles once, then keeps polling. */
  async start(): Promise<void> {
    if (this.started) return;
    if (this.stopping) throw new Error('a stopped Runner cannot be started again; create a new one');
    this.started = true;
    this.guardian.start(this.settings.killGraceMs);
    process.on('exit', this.killAll);
    try {
      const reaped = await reapLeftovers(this.deps.store, this.settings.killGraceMs, this.deps.log);
      if (reaped) this.deps.log.warn({ reaped }, 'ended instances left by a previous runner');
    } catch (err) {
      this.deps.log.warn({ err }, 'could not check for instances left by a previous runner');
    }
    await this.tick();
  }

  private async tick(): Promise<void> {
    try {
      await this.reconcileNow();
    } catch (err) {
      // MongoDB away: instances keep running as they are; the next poll tries again.
      this.deps.log.warn({ err }, 'reconcile failed');
    }
    if (!this.stopping) this.timer = setTimeout(() => void this.tick(), this.pollMs);
  }

  /**
   * Runs a reconcile pass that starts after this call (or joins one that is queued but not yet
   * begun), so that a caller who just changed a pool sees its change acted on.
   */
  reconcileNow(): Promise<void> {
    if (!this.queued) {
      const previous = (this.current ?? Promise.resolve()).catch(() => {});
      const pass: Promise<void> = previous.then(async () => {
        this.queued = undefined;
        this.current = pass;
        try {
          await this.reconcile();
        } finally {
          if (this.current === pass) this.current = undefined;
        }
      });
      this.queued = pass;
    }
    return this.queued;
  }

  private async reconcile(): Promise<void> {
    const docs = this.stopping ? [] : await this.deps.store.pools.find({}).toArray();
    const seen = new Set<string>();
    for (const doc of docs) {
      seen.add(poolKey(doc.service, doc.version));
      this.converge(doc, doc.desired === 'running' ? doc.instances : 0);
    }
    for (const [key, pool] of this.pools) {
      if (!seen.has(key)) this.converge({ service: pool.service, version: pool.version }, 0, this.stopping ? 'runner stopping' : 'pool removed');
    }
    await Promise.all([...this.pools.values()].flatMap((pool) => [...pool.instances.values()].map((i) => i.flush())));
  }

  private converge(doc: Pick<PoolDoc, 'service' | 'version'> & Partial<PoolDoc>, want: number, why?: string): void {
    const key = poolKey(doc.service, doc.version);
    let pool = this.pools.get(key);
    if (!pool) {
      if (want === 0) return;
      pool = { service: doc.service, version: doc.version, instances: new Map() };
      this.pools.set(key, pool);
    }
    for (let n = 0; n < want; n++) {
      const existing = pool.instances.get(n);
      if (existing) {
        if (doc.dir) existing.dir = doc.dir;
        continue;
      }
      const { store, events, log } = this.deps;
      const instance = new Instance({ store, events, log, guard: this.guardian, settings: this.settings }, doc.service, doc.version, n, doc.dir!);
      pool.instances.set(n, instance);
      instance.start();
    }
    const reason = why ?? (doc.desired === 'stopped' ? 'pool stopped' : `instances lowered to ${want}`);
    for (const [n, instance] of pool.instances) {
      if (n < want || instance.stopRequested) continue;
      void instance.stop(reason).then(() => this.forget(key, n, instance, why === 'pool removed'));
    }
  }

  private forget(key: string, n: number, instance: Instance, removeDoc: boolean): void {
    const pool = this.pools.get(key);
    if (pool?.instances.get(n) === instance) pool.instances.delete(n);
    if (pool && pool.instances.size === 0) this.pools.delete(key);
    if (removeDoc) {
      // Nobody asks for this version any more: its stopped instances need not be listed either.
      this.deps.store.instances.deleteOne({ instanceId: instance.instanceId, state: 'stopped' }).catch((err: Error) => {
        this.deps.log.warn({ err, instanceId: instance.instanceId }, 'stopped instance not removed');
      });
    }
  }

  /** Stops polling and stops (drains, terminates) every instance this runner started. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    // A pass under way may still start instances; one more pass (with stopping set) stops them all.
    await this.reconcileNow().catch(() => {});
    await Promise.all([...this.pools.values()].flatMap((pool) => [...pool.instances.values()].map((i) => i.stop('runner stopping'))));
    process.off('exit', this.killAll);
    await this.guardian.stop();
  }
}
