import { Router } from 'express';
import type { InstanceDoc } from '../../core/documents.ts';
import type { Store } from '../../core/mongo.ts';
import { readRouting, type RoutingState } from '../../core/routing-store.ts';
import type { BreakerStatus } from '../gateway/breaker.ts';
import type { CaptureCounters } from '../gateway/capture.ts';
import type { TrafficGateway } from '../gateway/traffic-gateway.ts';
import { readServiceHealth, type ServiceHealth } from '../gateway/metrics.ts';
import { serviceParam } from '../params.ts';

/** GET /api/routing/<service>: the routing, open sessions per version, the runner's instances and this gateway's breakers. */
export type RoutingAnswer = RoutingState & { sessions: Record<string, number>; instances: InstanceDoc[]; breakers: BreakerStatus[] };

/** GET /api/health/<service>: health per version, this gateway's breakers and its capture counters (null: capture is off). */
export type HealthAnswer = ServiceHealth & { breakers: BreakerStatus[]; capture: CaptureCounters | null };

/** Routing and health per service, as the gateway sees them. */
export function trafficRouter(deps: { store: Store; traffic: TrafficGateway }): Router {
  const { store, traffic } = deps;
  const router = Router();

  router.get('/routing/:service', async (req, res) => {
    const service = serviceParam(req.params.service);
    const routing = await readRouting(store, service);
    const sessions = await store.sessions
      .aggregate<{ _id: string; count: number }>([{ $match: { service, closedAt: { $exists: false } } }, { $group: { _id: '$version', count: { $sum: 1 } } }])
      .toArray();
    const instances = await store.instances.find({ service }, { projection: { _id: 0 } }).toArray();
    res.json({
      ...routing,
      sessions: Object.fromEntries(sessions.map((s) => [s._id, s.count])),
      instances,
      breakers: traffic.breaker.list(service),
    } satisfies RoutingAnswer);
  });

  router.get('/health/:service', async (req, res) => {
    const service = serviceParam(req.params.service);
    res.json({ ...(await readServiceHealth(store, service)), breakers: traffic.breaker.list(service), capture: traffic.capture?.counters ?? null } satisfies HealthAnswer);
  });

  return router;
}
