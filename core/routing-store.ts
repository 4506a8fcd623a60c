/**
 * A service's routing (stable version, weights, pulled versions, breaker thresholds) in MongoDB,
 * changed compare-and-set. FerretDB applies a filtered updateOne without isolation (two writers
 * filtering on the same revision both "match"), but it does enforce unique indexes. So a change
 * claims its revision number by inserting it into `routingRevisions` (unique per service and
 * revision): of two writers that read the same revision, exactly one insert succeeds and the other
 * reads again and re-applies its change. The newest revision is the routing; the `routing`
 * document is a copy of it for the gateways, re-published until it shows the newest revision.
 */
import type { RoutingDoc, RoutingRevisionDoc } from './documents.ts';
import { isDuplicateKey } from './insert-absent.ts';
import type { Store } from './mongo.ts';
import { routingWeights, weightListOf } from './routing.ts';

export interface RoutingState {
  service: string;
  stable?: string;
  weights: Record<string, number>;
  pulled: string[];
  /** Circuit-breaker thresholds (core/health.ts BreakerThresholds), set by the service's rollout. */
  breaker?: Record<string, number>;
  /** The rollout's step interval, set by the service's rollout (RoutingDoc.stepIntervalMs). */
  stepIntervalMs?: number;
  /** The revision this state is; 0 before the first compare-and-set change. */
  rev: number;
  updatedAt?: Date;
}

/**
 * What a change sets. Weights replace the old ones whole. A version leaves `pulled` only when a
 * change names it in `unpull` (a deployment of that version starting): giving it weight does not.
 */
export interface RoutingUpdate {
  stable?: string;
  weights?: Record<string, number>;
  pull?: string[];
  unpull?: string[];
  breaker?: Record<string, number>;
  stepIntervalMs?: number;
}

/** Revisions kept per service beyond the newest: a short history of routing changes. */
const KEEP_REVISIONS = 50;
const MAX_ATTEMPTS = 200;

function stateOf(service: string, doc: Partial<RoutingDoc> & { rev?: number }): RoutingState {
  return {
    service,
    ...(doc.stable ? { stable: doc.stable } : {}),
    weights: routingWeights({ weights: doc.weights ?? {}, ...(doc.weightList ? { weightList: doc.weightList } : {}) }),
    pulled: Array.isArray(doc.pulled) ? doc.pulled : [],
    ...(doc.breaker ? { breaker: doc.breaker } : {}),
    ...(doc.stepIntervalMs !== undefined ? { stepIntervalMs: doc.stepIntervalMs } : {}),
    rev: doc.rev ?? 0,
    ...(doc.updatedAt ? { updatedAt: doc.updatedAt } : {}),
  };
}

/** The routing of a service: its newest revision, else (never changed compare-and-set) its document. */
export async function readRouting(store: Store, service: string): Promise<RoutingState> {
  const [head] = await store.routingRevisions.find({ service }, { projection: { _id: 0 } }).sort({ rev: -1 }).limit(1).toArray();
  if (head) return stateOf(service, head);
  const doc = await store.routing.findOne({ service }, { projection: { _id: 0 } });
  return stateOf(service, doc ?? {});
}

/** The state `update` makes of `current` (pure; `rev` and time are the writer's). */
export function applyRoutingUpdate(current: RoutingState, update: RoutingUpdate): Omit<RoutingState, 'rev' | 'updatedAt'> {
  const unpull = new Set(update.unpull ?? []);
  const pulled = [...new Set([...current.pulled.filter((v) => !unpull.has(v)), ...(update.pull ?? [])])].sort();
  const stable = update.stable ?? current.stable;
  const breaker = update.breaker ?? current.breaker;
  const stepIntervalMs = update.stepIntervalMs ?? current.stepIntervalMs;
  return {
    service: current.service,
    ...(stable ? { stable } : {}),
    weights: { ...(update.weights ?? current.weights) },
    pulled,
    ...(breaker ? { breaker } : {}),
    ...(stepIntervalMs !== undefined ? { stepIntervalMs } : {}),
  };
}

function sameRouting(a: Omit<RoutingState, 'rev' | 'updatedAt'>, b: RoutingState): boolean {
  const norm = (s: Omit<RoutingState, 'rev' | 'updatedAt'>) => JSON.stringify([s.stable ?? null, weightListOf(s.weights), s.pulled, Object.entries(s.breaker ?? {}).sort(), s.stepIntervalMs ?? null]);
  return norm(a) === norm(b);
}

function docOf(state: Omit<RoutingState, 'rev' | 'updatedAt'>, rev: number, updatedAt: Date): Omit<RoutingRevisionDoc, 'service'> {
  return {
    ...(state.stable ? { stable: state.stable } : {}),
    // The list form: FerretDB refuses '.' in field names, and versions have dots.
    weights: {},
    weightList: weightListOf(state.weights),
    pulled: state.pulled,
    ...(state.breaker ? { breaker: state.breaker } : {}),
    ...(state.stepIntervalMs !== undefined ? { stepIntervalMs: state.stepIntervalMs } : {}),
    rev,
    updatedAt,
  };
}

/**
 * Copies the newest revision into the `routing` document, again until the copy shows the newest:
 * two publishers may write in either order, and the one that writes last re-reads afterwards.
 */
async function publish(store: Store, service: string): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [head] = await store.routingRevisions.find({ service }, { projection: { _id: 0, service: 0 } }).sort({ rev: -1 }).limit(1).toArray();
    if (!head) return;
    // Every routing field is set, so a write based on a stale read still leaves one whole revision.
    const unset: Record<string, ''> = { ...(head.stable ? {} : { stable: '' }), ...(head.breaker ? {} : { breaker: '' }), ...(head.stepIntervalMs !== undefined ? {} : { stepIntervalMs: '' }) };
    try {
      await store.routing.updateOne({ service }, { $set: head, ...(Object.keys(unset).length ? { $unset: unset } : {}), $setOnInsert: { service } }, { upsert: true });
    } catch (err) {
      if (isDuplicateKey(err)) continue; // another publisher inserted the document first
      throw err;
    }
    const shown = await store.routing.findOne({ service }, { projection: { rev: 1 } });
    const [newest] = await store.routingRevisions.find({ service }, { projection: { rev: 1 } }).sort({ rev: -1 }).limit(1).toArray();
    if (shown?.rev === newest?.rev) return;
  }
  throw new Error(`routing of ${service} could not be published: it changed ${MAX_ATTEMPTS} times meanwhile`);
}

/**
 * Changes a service's routing compare-and-set: `change` sees the newest revision and says what to
 * set (undefined: nothing); when another writer got there first, it runs again on theirs. The
 * routing document is published even when nothing changed, so a retry after a failed publish heals it.
 */
export async function updateRouting(store: Store, service: string, change: (current: RoutingState) => RoutingUpdate | undefined): Promise<RoutingState> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await readRouting(store, service);
    const update = change(current);
    const next = update ? applyRoutingUpdate(current, update) : undefined;
    if (!next || sameRouting(next, current)) {
      await publish(store, service);
      return current;
    }
    const rev = current.rev + 1;
    const updatedAt = new Date();
    try {
      await store.routingRevisions.insertOne({ service, ...docOf(next, rev, updatedAt) });
    } catch (err) {
      if (isDuplicateKey(err)) continue;
      throw err;
    }
    await publish(store, service);
    await store.routingRevisions.deleteMany({ service, rev: { $lte: rev - KEEP_REVISIONS } });
    return { ...next, rev, updatedAt };
  }
  throw new Error(`routing of ${service} changed ${MAX_ATTEMPTS} times while one change was being made`);
}

/** Sets where new sessions of a service go (and pulls or un-pulls versions), compare-and-set. */
export function setRouting(store: Store, service: string, update: RoutingUpdate): Promise<RoutingState> {
  return updateRouting(store, service, () => update);
}

/**
 * Takes a version out of rotation at once: weight 0 and its sessions refused (until a deployment
 * of it un-pulls it); the stable version keeps the rest.
 */
export function pullVersion(store: Store, service: string, version: string): Promise<RoutingState> {
  return updateRouting(store, service, (current) => {
    const weights = { ...current.weights, [version]: 0 };
    if (current.stable && current.stable !== version) weights[current.stable] = Math.max(weights[current.stable] ?? 0, 100);
    return { weights, pull: [version] };
  });
}
