import { Router } from 'express';
import type { Registry } from 'prom-client';

/** GET /metrics: the Prometheus text exposition of this API process (README "Metrics" lists them). */
export function metricsRouter(registry: Registry): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    const text = await registry.metrics();
    res.set('content-type', registry.contentType).send(text);
  });
  return router;
}
