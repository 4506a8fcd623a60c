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

export class NodeLease {
  readonly nodeId: string;
  readonly host: string;
  private readonly incarnation = randomUUID();
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

  /** Ends the lease at once, so that the other nodes take this node's slots without waiting for it to expire. */
  async expire(): Promise<void> {
    clearInterval(this.timer);
    await this.store.nodes.updateOne({ nodeId: this.nodeId, incarnation: this.incarnation }, { $set: { leaseUntil: new Date(0) } });
  }

  async remove(): Promise<void> {
    clearInterval(this.timer);
    await this.store.nodes.deleteOne({ nodeId: this.nodeId, incarnation: this.incarnation });
  }
}
