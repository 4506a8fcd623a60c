/**
 * This runner as a node in MongoDB: registered with its advertised host and capacity, and a lease
 * renewed every third of its length. A runner starting under a node id takes the node over (a
 * restarted container must not wait out its predecessor's lease); each write is guarded by the
 * incarnation set at start, so a runner that was taken over sees it at its next renewal and gives
 * up its slots (`lost`) rather than run them twice.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../core/config.ts';
import type { NodeDoc } from '../core/documents.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';

/** The configured node id, else the host name made fit for an id (a container's host name is unique). */
export function nodeIdFor(config: Config): string {
  if (config.runner.nodeId) return config.runner.nodeId;
  const cleaned = hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63);
  return cleaned || 'node';
}

/** Who holds a node: what ending its lease from outside the runner (its guardian) needs. */
export interface LeaseHolder {
  nodeId: string;
  incarnation: string;
}

/**
 * Ends the node's lease and releases its placements, so that live nodes take its slots at their
 * next pass and gateways stop routing to it, without waiting for the lease to lapse. Nothing is
 * done when another runner has taken the node over since (it holds the placements now).
 */
export async function endLease(store: Pick<Store, 'nodes' | 'placements'>, holder: LeaseHolder): Promise<boolean> {
  const ended = await store.nodes.updateOne({ nodeId: holder.nodeId, incarnation: holder.incarnation }, { $set: { leaseUntil: new Date(0) } });
  if (ended.matchedCount === 0) return false;
  await store.placements.deleteMany({ nodeId: holder.nodeId });
  return true;
}

export class NodeLease implements LeaseHolder {
  readonly nodeId: string;
  readonly host: string;
  readonly incarnation = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  /** Another runner registered under this node id since: this one must run nothing. */
  lost = false;

  constructor(
    private readonly store: Store,
    config: Config,
    private readonly log: Logger,
  ) {
    this.nodeId = nodeIdFor(config);
    this.host = config.runner.advertiseHost;
    this.capacity = config.runner.capacity;
    this.leaseMs = config.runner.leaseMs;
  }

  private readonly capacity: number;
  readonly leaseMs: number;

  async register(): Promise<void> {
    const now = new Date();
    const existing = await this.store.nodes.findOne({ nodeId: this.nodeId });
    if (existing && existing.leaseUntil > now) {
      this.log.warn({ nodeId: this.nodeId, leaseUntil: existing.leaseUntil }, 'taking over a runner node whose lease still runs (a restart, or two runners under one MCPSHIP_NODE_ID)');
    }
    const doc: NodeDoc = { nodeId: this.nodeId, host: this.host, capacity: this.capacity, leaseUntil: new Date(now.getTime() + this.leaseMs), incarnation: this.incarnation, startedAt: now };
    await this.store.nodes.replaceOne({ nodeId: this.nodeId }, doc, { upsert: true });
    this.timer = setInterval(() => void this.renew(), Math.max(200, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const result = await this.store.nodes.updateOne({ nodeId: this.nodeId, incarnation: this.incarnation }, { $set: { leaseUntil: new Date(Date.now() + this.leaseMs) } });
      if (result.matchedCount === 0 && !this.lost) {
        this.lost = true;
        this.log.error({ nodeId: this.nodeId }, 'another runner took over this node id; stopping the instances here (give each runner its own MCPSHIP_NODE_ID)');
      }
    } catch (err) {
      this.log.warn({ err, nodeId: this.nodeId }, 'node lease not renewed; will retry');
    }
  }

  /** Ends the lease at once and releases the placements, so that the other nodes take this node's slots without waiting for it to expire. */
  async expire(): Promise<void> {
    clearInterval(this.timer);
    await endLease(this.store, this);
  }

  async remove(): Promise<void> {
    clearInterval(this.timer);
    await this.store.nodes.deleteOne({ nodeId: this.nodeId, incarnation: this.incarnation });
  }
}
