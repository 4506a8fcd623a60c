import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { EventStore } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../../core/mongo.ts';
import { pullVersion, readRouting } from '../../core/routing-store.ts';
import { deploymentWorkflowId } from '../../core/workflow-ids.ts';
import type { AlertEvent, TripEvent } from './breaker.ts';
import type { RoutingCache } from './routing-cache.ts';

/** The deployment workflow's signal for a breaker trip; it rolls the canary back. */
export const BREACH_SIGNAL = 'breach';

const SIGNAL_ATTEMPTS = 8;
const SIGNAL_FIRST_DELAY_MS = 250;

/**
 * Tells the version's deployment, retrying with backoff while Temporal is away. No deployment
 * running for it (a manual weight, or already ended) is no error: routing alone protects users.
 * The workflow also reads the pull from MongoDB at each step, so a signal lost for good still ends it.
 */
async function signalDeployment(temporal: Client, trip: TripEvent, log: Logger): Promise<void> {
  const { service, version, reasons } = trip;
  const handle = temporal.workflow.getHandle(deploymentWorkflowId(service, version));
  for (let attempt = 1; ; attempt++) {
    try {
      await handle.signal(BREACH_SIGNAL, { reasons, at: new Date(trip.at).toISOString() });
      return;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError || attempt >= SIGNAL_ATTEMPTS) {
        log.info({ service, version, attempt, err: (err as Error).message }, 'breach not signalled to a deployment');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, SIGNAL_FIRST_DELAY_MS * 2 ** (attempt - 1)));
    }
  }
}

/**
 * What a tripped breaker sets in motion beyond this gateway: a canary is pulled in MongoDB (so
 * every gateway routes around it, until a deployment of it un-pulls it), the trip is recorded, and
 * the version's deployment workflow is told, so that it rolls back. The stable version is never
 * pulled: it has nothing to fall back to.
 */
export function onBreach(deps: { store: Store; events: EventStore; cache: RoutingCache; temporal?: Client; log: Logger }) {
  return async (trip: TripEvent): Promise<void> => {
    const { service, version, reasons, stats, unanswered } = trip;
    const routing = await readRouting(deps.store, service);
    const isCanary = routing.stable !== undefined && routing.stable !== version;
    // The pull, the record and the signal do not depend on each other: they go out together.
    await Promise.all([
      isCanary ? pullVersion(deps.store, service, version).then(() => deps.cache.invalidate(service)) : undefined,
      deps.events.append({ service, version, kind: 'BREAKER_OPEN', status: 'failed', details: { reasons, stats, unanswered, pulled: isCanary } }),
      isCanary && deps.temporal ? signalDeployment(deps.temporal, trip, deps.log) : undefined,
    ]);
  };
}

/** The stable version breaches on tool-level errors or latency: it keeps serving, and this is the alert. */
export function onAlert(deps: { events: EventStore }) {
  return ({ service, version, reasons, stats }: AlertEvent): Promise<unknown> =>
    deps.events.append({ service, version, kind: 'BREAKER_ALERT', status: 'failed', details: { reasons, stats, served: true } });
}
