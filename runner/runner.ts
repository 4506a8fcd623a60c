/**
 * The runner: reconciles the desired pools in MongoDB (runner/desired-state.ts) into supervised
 * instances (runner/instance.ts). It polls, because the MongoDB-wire server embedded by default
 * has no change streams; reconcileNow() lets a caller in the same process skip the wait.
 *
 * Any number of runners share a database, each as a node (runner/node.ts): every pass, a runner
 * places unplaced slots on live nodes (runner/node-placement.ts; the unique placement index settles
 * races), releases slots of dead nodes and marks their instances stopped, then runs the slots placed
 * on itself. Instance ids carry the node: `<service>-<version>-<node>-<slot>`.
 */
import path from 'node:path';
import type { Config } from '../core/config.ts';
import type { PlacementDoc, PoolDoc } from '../core/documents.ts';
import type { EventStore } from '../core/events.ts';
import { insertOneAbsent } from '../core/insert-absent.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';
import { Guardian } from './guardian.ts';
import { Instance, type InstanceSettings } from './instance.ts';
import { reapLeftovers } from './leftovers.ts';
import { NodeLease } from './node.ts';
import { chooseNode, liveNodes, planPlacements } from './node-placement.ts';
import { needsRelay } from './node-relay.ts';

const LIVE_STATES = ['starting', 'ready', 'draining', 'failed'] as const;

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
  /** The store's URI and config.mongo.database: the guardian connects with them to end the lease of a runner that died. */
  mongoUri: string;
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
  readonly node: NodeLease;
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
    this.node = new NodeLease(deps.store, deps.config, deps.log);
    const { advertiseHost, bindHost } = deps.config.runner;
    this.settings = {
      nodeId: this.node.nodeId,
      ...(needsRelay(advertiseHost) ? { expose: { advertiseHost, bindHost: bindHost ?? advertiseHost } } : {}),
      drainMs: deps.config.runner.drainMs,
      readyTimeoutMs: deps.config.runner.readyTimeoutMs,
      killGraceMs: options.killGraceMs,
      probeIntervalMs: options.probeIntervalMs,
      stableMs: options.stableMs,
      backoff: options.backoff,
      logDir: path.join(deps.config.stateDir, 'logs', 'instances'),
    };
  }

  /** Registers the node, ends what this node's previous runner left running, reconciles once, then keeps polling. */
  async start(): Promise<void> {
    if (this.started) return;
    if (this.stopping) throw new Error('a stopped Runner cannot be started again; create a new one');
    await this.node.register();
    this.started = true;
    this.guardian.start(this.settings.killGraceMs, { uri: this.deps.mongoUri, database: this.deps.config.mongo.database, nodeId: this.node.nodeId, incarnation: this.node.incarnation });
    process.on('exit', this.killAll);
    try {
      const reaped = await reapLeftovers(this.deps.store, this.node.nodeId, this.settings.killGraceMs, this.deps.log);
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
    const mine = this.stopping || this.node.lost ? new Map<string, Set<number>>() : await this.place(docs);
    const seen = new Set<string>();
    for (const doc of docs) {
      const key = poolKey(doc.service, doc.version);
      seen.add(key);
      this.converge(doc, doc.desired === 'running' ? (mine.get(key) ?? new Set()) : new Set());
    }
    for (const [key, pool] of this.pools) {
      if (!seen.has(key)) this.converge({ service: pool.service, version: pool.version }, new Set(), this.stopping ? 'runner stopping' : 'pool removed');
    }
    await Promise.all([...this.pools.values()].flatMap((pool) => [...pool.instances.values()].map((i) => i.flush())));
  }

  /**
   * One placement round over a fresh read: releases unwanted and dead placements, ends the dead
   * nodes' instance documents (their runner cannot), claims the free slots, and returns the slots
   * placed on this node by pool.
   */
  private async place(pools: PoolDoc[]): Promise<Map<string, Set<number>>> {
    const { store, log } = this.deps;
    const now = new Date();
    const [nodes, placements] = await Promise.all([store.nodes.find({}).toArray(), store.placements.find({}).toArray()]);
    // A runner is alive to itself even when a late renewal let its lease lapse: it must not end its own instances.
    const live = liveNodes(nodes, now).concat(nodes.filter((n) => n.nodeId === this.node.nodeId && n.leaseUntil <= now));
    const liveIds = new Set(live.map((n) => n.nodeId));
    const plan = planPlacements(pools, placements, liveIds);
    for (const p of plan.release) {
      // Filtered on the node too: a slot someone has just placed anew is not released by a stale read.
      await store.placements.deleteOne({ service: p.service, version: p.version, slot: p.slot, nodeId: p.nodeId });
    }
    const dead = nodes.filter((n) => !liveIds.has(n.nodeId)).map((n) => n.nodeId);
    if (dead.length > 0) {
      const ended = await store.instances.updateMany(
        { nodeId: { $in: dead }, state: { $in: [...LIVE_STATES] } },
        { $set: { state: 'stopped', lastError: 'its runner node stopped renewing its lease', updatedAt: now } },
      );
      if (ended.modifiedCount > 0) log.warn({ nodes: dead, instances: ended.modifiedCount }, 'instances of dead runner nodes marked stopped');
    }
    const held: PlacementDoc[] = placements.filter((p) => !plan.release.includes(p));
    for (const slot of plan.unplaced) {
      const node = chooseNode(live, held, slot.service, slot.version);
      if (!node) {
        log.warn({ ...slot }, 'no runner node has room for this instance');
        continue;
      }
      const doc = { ...slot, nodeId: node.nodeId, placedAt: now };
      // Not inserted: another runner placed it first; the next read shows where.
      if (await insertOneAbsent(store.placements, { ...doc })) held.push(doc);
    }
    const mine = new Map<string, Set<number>>();
    for (const p of await store.placements.find({ nodeId: this.node.nodeId }).toArray()) {
      const key = poolKey(p.service, p.version);
      if (!mine.has(key)) mine.set(key, new Set());
      mine.get(key)!.add(p.slot);
    }
    return mine;
  }

  private converge(doc: Pick<PoolDoc, 'service' | 'version'> & Partial<PoolDoc>, slots: ReadonlySet<number>, why?: string): void {
    const key = poolKey(doc.service, doc.version);
    let pool = this.pools.get(key);
    if (!pool) {
      if (slots.size === 0) return;
      pool = { service: doc.service, version: doc.version, instances: new Map() };
      this.pools.set(key, pool);
    }
    for (const n of slots) {
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
    const reason = why ?? (doc.desired === 'stopped' ? 'pool stopped' : 'slot not placed on this node any more');
    for (const [n, instance] of pool.instances) {
      if (slots.has(n) || instance.stopRequested) continue;
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

  /**
   * Stops polling and stops (drains, terminates) every instance this runner started. The lease is
   * ended first and the node's placements released, so that live nodes start replacements while
   * these drain.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.started) await this.node.expire().catch((err: Error) => this.deps.log.warn({ err }, 'node lease not ended'));
    // A pass under way may still start instances; one more pass (with stopping set) stops them all.
    await this.reconcileNow().catch(() => {});
    await Promise.all([...this.pools.values()].flatMap((pool) => [...pool.instances.values()].map((i) => i.stop('runner stopping'))));
    process.off('exit', this.killAll);
    await this.guardian.stop();
    if (this.started) await this.node.remove().catch((err: Error) => this.deps.log.warn({ err }, 'node not removed'));
  }
}
