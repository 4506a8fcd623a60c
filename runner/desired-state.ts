/**
 * The runner's desired state in MongoDB: which versions of which service should run, and how many
 * instances of each. Deployment activities call these; Temporal may retry an activity, so every
 * call is idempotent (an upsert keyed by service and version).
 */
import type { InstanceDoc, PoolDoc } from '../core/documents.ts';
import type { Store } from '../core/mongo.ts';

export interface PoolSpec {
  service: string;
  version: string;
  /** The staged or archived folder (with its mcp.json) the instances start from. */
  dir: string;
  instances: number;
}

/** Asks for `instances` running copies of a version; the runner converges on it within a poll. */
export async function setPool(store: Store, spec: PoolSpec): Promise<PoolDoc> {
  if (!Number.isInteger(spec.instances) || spec.instances < 0) {
    throw new RangeError(`instances must be a whole number >= 0, got ${spec.instances}`);
  }
  const doc: PoolDoc = { ...spec, desired: 'running', updatedAt: new Date() };
  await store.pools.updateOne({ service: spec.service, version: spec.version }, { $set: doc }, { upsert: true });
  return doc;
}

/**
 * Asks for a version's instances to be drained and stopped. Returns false when there is no such
 * pool (nothing to stop), which a retried activity treats as done.
 */
export async function stopPool(store: Store, service: string, version: string): Promise<boolean> {
  const result = await store.pools.updateOne({ service, version }, { $set: { desired: 'stopped', updatedAt: new Date() } });
  return result.matchedCount > 0;
}

/** Instances that take new sessions now, in a stable order (by instanceId). */
export async function readyInstances(store: Store, service: string, version?: string): Promise<InstanceDoc[]> {
  const filter = version === undefined ? { service, state: 'ready' as const } : { service, version, state: 'ready' as const };
  return store.instances.find(filter, { projection: { _id: 0 } }).sort({ instanceId: 1 }).toArray();
}
