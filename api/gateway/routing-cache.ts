/**
 * What the gateway routes by — a service's RoutingDoc and its ready instances — read from MongoDB
 * and kept in memory. Requests never wait on MongoDB while the copy is fresh: a timer re-reads
 * every service used lately, so a weight change written by a workflow activity (in any process)
 * is in effect within refreshMs plus one read, well under a second.
 */
import type { InstanceDoc, RoutingDoc } from '../../core/documents.ts';
import type { Store } from '../../core/mongo.ts';
import { routingWeights } from '../../core/routing.ts';

export interface ServiceRoutes {
  service: string;
  /** undefined: no routing document, the service is unknown to the gateway. `weights` is filled from `weightList` when the document has one. */
  routing: RoutingDoc | undefined;
  /** Ready instances per version, ordered by instanceId. */
  ready: ReadonlyMap<string, readonly InstanceDoc[]>;
  /** performance.now() of the read. */
  loadedAt: number;
}

export interface RoutingCacheOptions {
  /** How often services in use are re-read. */
  refreshMs?: number;
  /** A copy older than this (a service idle for a while, or MongoDB slow) is re-read before use. */
  maxAgeMs?: number;
  /** Services not asked for in this long are dropped from the refresh loop. */
  idleMs?: number;
  log?: { warn(obj: object, msg: string): void };
}

interface Entry {
  routes?: ServiceRoutes;
  loading?: Promise<ServiceRoutes>;
  usedAt: number;
}

export class RoutingCache {
  private readonly entries = new Map<string, Entry>();
  private readonly timer: NodeJS.Timeout;
  private readonly refreshMs: number;
  private readonly maxAgeMs: number;
  private readonly idleMs: number;

  constructor(
    private readonly store: Pick<Store, 'routing' | 'instances'>,
    private readonly opts: RoutingCacheOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 250;
    this.maxAgeMs = opts.maxAgeMs ?? 1000;
    this.idleMs = opts.idleMs ?? 60_000;
    this.timer = setInterval(() => this.refreshAll(), this.refreshMs);
    this.timer.unref();
  }

  /**
   * The service's routes: the cached copy when fresh, else a read (one at a time per service).
   * When MongoDB cannot be read, a stale copy is better than refusing traffic; with no copy, throws.
   */
  async get(service: string): Promise<ServiceRoutes> {
    const now = performance.now();
    const entry = this.entries.get(service) ?? { usedAt: now };
    entry.usedAt = now;
    this.entries.set(service, entry);
    if (entry.routes && now - entry.routes.loadedAt <= this.maxAgeMs) return entry.routes;
    try {
      return await this.load(service, entry);
    } catch (err) {
      if (entry.routes) return entry.routes;
      throw err;
    }
  }

  /** Forget the copy, so the next get() reads MongoDB: for writers in this process. */
  invalidate(service?: string): void {
    if (service === undefined) this.entries.clear();
    else this.entries.delete(service);
  }

  close(): void {
    clearInterval(this.timer);
    this.entries.clear();
  }

  private load(service: string, entry: Entry): Promise<ServiceRoutes> {
    if (entry.loading) return entry.loading;
    const loading = this.read(service).then(
      (routes) => {
        entry.loading = undefined;
        // An invalidate() while reading replaced the entry; the read may predate the change.
        if (this.entries.get(service) === entry) entry.routes = routes;
        return routes;
      },
      (err: unknown) => {
        entry.loading = undefined;
        throw err;
      },
    );
    entry.loading = loading;
    return loading;
  }

  private async read(service: string): Promise<ServiceRoutes> {
    const [routing, instances] = await Promise.all([
      this.store.routing.findOne({ service }, { projection: { _id: 0 } }),
      this.store.instances.find({ service, state: 'ready' }, { projection: { _id: 0 } }).toArray(),
    ]);
    const ready = new Map<string, InstanceDoc[]>();
    for (const instance of instances.sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0))) {
      const list = ready.get(instance.version) ?? [];
      list.push(instance);
      ready.set(instance.version, list);
    }
    // From here on `weights` is the one form of the shares, whichever form the document used.
    const view = routing ? { ...routing, weights: routingWeights(routing), pulled: Array.isArray(routing.pulled) ? routing.pulled : [] } : undefined;
    return { service, routing: view, ready, loadedAt: performance.now() };
  }

  private refreshAll(): void {
    const now = performance.now();
    for (const [service, entry] of this.entries) {
      if (now - entry.usedAt > this.idleMs) {
        this.entries.delete(service);
        continue;
      }
      this.load(service, entry).catch((err: unknown) => this.opts.log?.warn({ err, service }, 'routing refresh failed; keeping the last copy'));
    }
  }
}
