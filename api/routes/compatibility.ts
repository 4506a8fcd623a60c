import { Router } from 'express';
import { readMatrix } from '../../compat/matrix.ts';
import { readTransformStats, type TransformStats } from '../../compat/transform-stats.ts';
import type { CompatMatrix } from '../../compat/types.ts';
import type { Store } from '../../core/mongo.ts';
import { serviceParam } from '../params.ts';

/** GET /api/services/<name>/compatibility. */
export type CompatAnswer = CompatMatrix & { transforms: TransformStats[] };

/** A service's compatibility matrix (compat/matrix.ts) and its transforms' counters. */
export function compatibilityRouter(deps: { store: Store }): Router {
  const router = Router();
  router.get('/services/:name/compatibility', async (req, res) => {
    const service = serviceParam(req.params.name);
    const [matrix, transforms] = await Promise.all([readMatrix(deps.store, service), readTransformStats(deps.store, service)]);
    res.json({ ...matrix, transforms } satisfies CompatAnswer);
  });
  return router;
}
