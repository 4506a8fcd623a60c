import { Router } from 'express';
import type { Store } from '../../core/mongo.ts';
import { readRouting } from '../../core/routing-store.ts';
import type { TrafficGateway } from '../gateway/traffic-gateway.ts';
import { readServiceHealth } from '../gateway/metrics.ts';
import { serviceParam } from '../params.ts';

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
    });
  });

  router.get('/health/:service', async (req, res) => {
    const service = serviceParam(req.params.service);
    res.json({ ...(await readServiceHealth(store, service)), breakers: traffic.breaker.list(service), capture: traffic.capture?.counters ?? null });
  });

  return router;
}
