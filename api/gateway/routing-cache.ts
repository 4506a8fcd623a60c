/**
 * What the gateway routes by — a service's RoutingDoc and its ready instances — read from MongoDB
 * and kept in memory. Requests never wait on MongoDB while the copy is fresh: a timer re-reads
 * every service used lately, so a weight change written by a workflow activity (in any process)
 * is in effect within refreshMs plus one read, well under a second.
 *
 * Names without a routing document are remembered apart (a negative cache): never refreshed by the
 * timer, re-read on demand at most once per unknownMs, and at most maxUnknown of them, the oldest
 * forgotten first. Anyone can send requests for made-up names; they must not become MongoDB load.
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
  /** An unknown service name is looked up again after this long (default: maxAgeMs). */
  unknownMs?: number;
  /** Unknown names remembered at once. */
  maxUnknown?: number;
  log?: { warn(obj: object, msg: string): void };
}

interface Entry {
  routes?: ServiceRoutes;
  loading?: Promise<ServiceRoutes>;
  usedAt: number;
}

export class RoutingCache {
  private readonly entries = new Map<string, Entry>();
  /** Names read lately and found without a routing document, oldest first. */
  private readonly unknown = new Map<string, ServiceRoutes>();
  private readonly timer: NodeJS.Timeout;
  private readonly refreshMs: number;
  private readonly maxAgeMs: number;
  private readonly idleMs: number;
  private readonly unknownMs: number;
  private readonly maxUnknown: number;

  constructor(
    private readonly store: Pick<Store, 'routing' | 'instances' | 'nodes'>,
    private readonly opts: RoutingCacheOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 250;
    this.maxAgeMs = opts.maxAgeMs ?? 1000;
    this.idleMs = opts.idleMs ?? 60_000;
    this.unknownMs = opts.unknownMs ?? this.maxAgeMs;
    this.maxUnknown = opts.maxUnknown ?? 10_000;
    this.timer = setInterval(() => this.refreshAll(), this.refreshMs);
    this.timer.unref();
  }

  /**
   * The service's routes: the cached copy when fresh, else a read (one at a time per service).
   * When MongoDB cannot be read, a stale copy is better than refusing traffic; with no copy, throws.
   */
  async get(service: string): Promise<ServiceRoutes> {
    const now = performance.now();
    const miss = this.unknown.get(service);
    if (miss && now - miss.loadedAt <= this.unknownMs) return miss;
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
    if (service === undefined) {
      this.entries.clear();
      this.unknown.clear();
    } else {
      this.entries.delete(service);
      this.unknown.delete(service);
    }
  }

  /** Unknown names remembered (for tests and the health endpoint). */
  get unknownCount(): number {
    return this.unknown.size;
  }

  close(): void {
    clearInterval(this.timer);
    this.entries.clear();
    this.unknown.clear();
  }

  private load(service: string, entry: Entry): Promise<ServiceRoutes> {
    if (entry.loading) return entry.loading;
    const loading = this.read(service).then(
      (routes) => {
        entry.loading = undefined;
        // An invalidate() while reading replaced the entry; the read may predate the change.
        if (this.entries.get(service) !== entry) return routes;
        if (routes.routing) {
          entry.routes = routes;
          this.unknown.delete(service);
        } else {
          this.entries.delete(service);
          this.rememberUnknown(routes);
        }
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
    const [routing, instances, deadNodes] = await Promise.all([
      this.store.routing.findOne({ service }, { projection: { _id: 0 } }),
      this.store.instances.find({ service, state: 'ready' }, { projection: { _id: 0 } }).toArray(),
      // A killed runner node leaves its instances 'ready' until a live runner ends them; its lapsed lease says so at once.
      this.store.nodes.find({ leaseUntil: { $lte: new Date() } }, { projection: { _id: 0, nodeId: 1 } }).toArray(),
    ]);
    const dead = new Set(deadNodes.map((n) => n.nodeId));
    const ready = new Map<string, InstanceDoc[]>();
    for (const instance of instances.filter((i) => i.nodeId === undefined || !dead.has(i.nodeId)).sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0))) {
      const list = ready.get(instance.version) ?? [];
      list.push(instance);
      ready.set(instance.version, list);
    }
    // From here on `weights` is the one form of the shares, whichever form the document used.
    const view = routing ? { ...routing, weights: routingWeights(routing), pulled: Array.isArray(routing.pulled) ? routing.pulled : [] } : undefined;
    return { service, routing: view, ready, loadedAt: performance.now() };
  }

  private rememberUnknown(routes: ServiceRoutes): void {
    this.unknown.delete(routes.service);
    this.unknown.set(routes.service, routes);
    if (this.unknown.size > this.maxUnknown) {
      const oldest = this.unknown.keys().next().value;
      if (oldest !== undefined) this.unknown.delete(oldest);
    }
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
