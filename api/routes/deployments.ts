import { Router } from 'express';
import type { DeploymentControl, DeploymentControlName } from '../deployment-control.ts';
import { HttpError } from '../errors.ts';
import { serviceParam, versionParam } from '../params.ts';

/** The controls as their paths name them: POST /api/services/<name>/<path>. */
export type DeploymentControlPath = 'promote' | 'pause' | 'resume' | 'abort' | 'set-weight';

const CONTROLS: Record<string, DeploymentControlName> = { promote: 'promote', pause: 'pause', resume: 'resume', abort: 'abort', 'set-weight': 'setWeight' } satisfies Record<DeploymentControlPath, DeploymentControlName>;

/** GET /api/services/<name>/deployment: the deployment workflow's state, and whether it still runs. */
export type DeploymentAnswer = Awaited<ReturnType<DeploymentControl['state']>>;
/** POST /api/services/<name>/deploy. */
export type DeployStarted = Awaited<ReturnType<DeploymentControl['start']>>;
/** POST /api/services/<name>/rollback: the deployment of the version it rolls back to. */
export type RollbackStarted = Awaited<ReturnType<DeploymentControl['rollback']>>;
/** POST /api/services/<name>/<control> and .../deployment/override: the deployment's state once the control is taken. */
export type ControlAnswer = Awaited<ReturnType<DeploymentControl['control']>>;

/**
 * Deploy, roll back and steer rollouts: POST /api/services/<name>/deploy|promote|pause|resume|abort|set-weight|rollback.
 * Token and content type are checked for every state change in server.ts.
 */
export function deploymentsRouter(control: DeploymentControl): Router {
  const router = Router();

  router.get('/services/:name/deployment', async (req, res) => {
    res.json(await control.state(serviceParam(req.params.name)));
  });

  router.post('/services/:name/deploy', async (req, res) => {
    const service = serviceParam(req.params.name);
    const version = versionParam(req.body?.version);
    res.status(202).json(await control.start(service, version, 'canary', 'deployed through the API'));
  });

  router.post('/services/:name/rollback', async (req, res) => {
    const service = serviceParam(req.params.name);
    const version = req.body?.version === undefined ? undefined : versionParam(req.body.version);
    res.status(202).json(await control.rollback(service, version));
  });

  router.post('/services/:name/:control', async (req, res) => {
    const name = CONTROLS[String(req.params.control)];
    if (!name) throw new HttpError(404, 'not_found', `no control ${req.params.control}: use ${[...Object.keys(CONTROLS), 'deploy', 'rollback'].join(', ')}`);
    const service = serviceParam(req.params.name);
    let arg: unknown;
    if (name === 'setWeight') {
      arg = req.body?.weight;
      if (typeof arg !== 'number') throw new HttpError(400, 'bad_request', 'set-weight needs a JSON body {"weight": 0..100}');
    } else if (name === 'abort' && typeof req.body?.reason === 'string') {
      arg = req.body.reason;
    }
    res.json(await control.control(service, name, arg));
  });

  return router;
}
