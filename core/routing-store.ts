import type { RoutingDoc } from './documents.ts';
import type { Store } from './mongo.ts';
import { routingWeights, weightListOf } from './routing.ts';

export interface RoutingState {
  service: string;
  stable?: string;
  weights: Record<string, number>;
  pulled: string[];
  updatedAt?: Date;
}

/** The routing of a service with its weights resolved (stored as a list: FerretDB refuses dotted keys). */
export async function readRouting(store: Store, service: string): Promise<RoutingState> {
  const doc = await store.routing.findOne({ service });
  if (!doc) return { service, weights: {}, pulled: [] };
  return { service, ...(doc.stable ? { stable: doc.stable } : {}), weights: routingWeights(doc), pulled: doc.pulled ?? [], updatedAt: doc.updatedAt };
}

/**
 * Sets where new sessions of a service go. A version given weight again is no longer pulled;
 * versions named in `pull` are pulled (their sessions get 404 on their next request).
 */
export async function setRouting(
  store: Store,
  service: string,
  next: { stable?: string; weights: Record<string, number>; pull?: string[] },
  current?: RoutingState,
): Promise<RoutingState> {
  current ??= await readRouting(store, service);
  const weighted = new Set(Object.entries(next.weights).filter(([, w]) => w > 0).map(([v]) => v));
  const pulled = [...new Set([...current.pulled.filter((v) => !weighted.has(v)), ...(next.pull ?? [])])].sort();
  const stable = next.stable ?? current.stable;
  const doc: Omit<RoutingDoc, 'service'> = {
    ...(stable ? { stable } : {}),
    weights: {},
    weightList: weightListOf(next.weights),
    pulled,
    updatedAt: new Date(),
  };
  await store.routing.updateOne({ service }, { $set: doc, $setOnInsert: { service } }, { upsert: true });
  return { service, ...(stable ? { stable } : {}), weights: next.weights, pulled, updatedAt: doc.updatedAt };
}

/** Takes a version out of rotation at once: weight 0 and its sessions refused; the stable version keeps the rest. */
export async function pullVersion(store: Store, service: string, version: string): Promise<RoutingState> {
  const current = await readRouting(store, service);
  const weights = { ...current.weights, [version]: 0 };
  if (current.stable && current.stable !== version) weights[current.stable] = Math.max(weights[current.stable] ?? 0, 100);
  return setRouting(store, service, { weights, pull: [version] }, current);
}
