import type { Client } from '@temporalio/client';
import type { EventStore } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../../core/mongo.ts';
import { pullVersion, readRouting } from '../../core/routing-store.ts';
import { deploymentWorkflowId } from '../../core/workflow-ids.ts';
import type { TripEvent } from './breaker.ts';
import type { RoutingCache } from './routing-cache.ts';

/** The deployment workflow's signal for a breaker trip; it rolls the canary back. */
export const BREACH_SIGNAL = 'breach';

async function signalDeployment(temporal: Client, trip: TripEvent, log: Logger): Promise<void> {
  const { service, version, reasons } = trip;
  try {
    await temporal.workflow.getHandle(deploymentWorkflowId(service, version)).signal(BREACH_SIGNAL, { reasons, at: new Date(trip.at).toISOString() });
  } catch (err) {
    // No deployment running for it (a manual weight, or already ended): routing alone protects users.
    log.info({ service, version, err: (err as Error).message }, 'breach not signalled to a deployment');
  }
}

/**
 * What a tripped breaker sets in motion beyond this gateway: the canary is pulled in MongoDB (so
 * every gateway routes around it), the trip is recorded, and the version's deployment workflow is
 * told, so that it rolls back. The stable version is never pulled: it has nothing to fall back to,
 * and answers with JSON-RPC errors while its breaker is open.
 */
export function onBreach(deps: { store: Store; events: EventStore; cache: RoutingCache; temporal?: Client; log: Logger }) {
  return async (trip: TripEvent): Promise<void> => {
    const { service, version, reasons, stats } = trip;
    const routing = await readRouting(deps.store, service);
    const isCanary = routing.stable !== undefined && routing.stable !== version;
    // The pull, the record and the signal do not depend on each other: they go out together.
    await Promise.all([
      isCanary ? pullVersion(deps.store, service, version).then(() => deps.cache.invalidate(service)) : undefined,
      deps.events.append({ service, version, kind: 'BREAKER_OPEN', status: 'failed', details: { reasons, stats, pulled: isCanary } }),
      isCanary && deps.temporal ? signalDeployment(deps.temporal, trip, deps.log) : undefined,
    ]);
  };
}
