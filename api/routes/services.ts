import { Router } from 'express';
import type { Config } from '../../core/config.ts';
import { VERSION_STATES, type ServiceDoc, type VersionDoc, type VersionState } from '../../core/documents.ts';
import type { Store } from '../../core/mongo.ts';
import { NotFoundError, type VersionRepo } from '../../core/version-repo.ts';
import { IllegalTransitionError } from '../../core/version-state.ts';
import { serviceWorkflowId, temporalUiLink } from '../../core/workflow-ids.ts';
import { HttpError } from '../errors.ts';
import { serviceParam, versionParam } from '../params.ts';

/** A service as GET /api/services lists it: its document, its service workflow and that workflow's page in the Temporal UI. */
export type ServiceRow = ServiceDoc & { workflowId: string; temporalUi?: string };

/** GET /api/services. */
export interface ServiceList {
  services: ServiceRow[];
}

/** GET /api/services/<name>: the service and a line per version, newest first. */
export type ServiceDetail = ServiceRow & { versions: Pick<VersionDoc, 'version' | 'state' | 'hash' | 'createdAt'>[] };

/** GET /api/services/<name>/versions; a single version (GET .../versions/<v>, archive, restore) answers its VersionDoc. */
export interface VersionList {
  service: string;
  versions: VersionDoc[];
}

/** Domain errors keep their meaning over HTTP. */
function asHttp(err: unknown): never {
  if (err instanceof NotFoundError) throw new HttpError(404, 'not_found', err.message);
  if (err instanceof IllegalTransitionError) throw new HttpError(409, 'illegal_transition', err.message);
  throw err;
}

/** Services and versions; archive and restore are state changes, guarded for the whole API in server.ts. */
export function servicesRouter(deps: { config: Config; store: Store; versions: VersionRepo; temporalUiUrl?: string }): Router {
  const { config, store, versions } = deps;
  const link = (workflowId: string) => temporalUiLink(deps.temporalUiUrl, config.temporal.namespace, workflowId);
  const router = Router();

  router.get('/services', async (_req, res) => {
    const services = await store.services.find({}, { projection: { _id: 0 } }).sort({ name: 1 }).toArray();
    res.json({ services: services.map((s) => ({ ...s, workflowId: serviceWorkflowId(s.name), temporalUi: link(serviceWorkflowId(s.name)) })) } satisfies ServiceList);
  });

  router.get('/services/:name', async (req, res) => {
    const name = serviceParam(req.params.name);
    const service = await store.services.findOne({ name }, { projection: { _id: 0 } });
    if (!service) throw new HttpError(404, 'not_found', `no service ${name}`);
    const list = await versions.list(name);
    res.json({
      ...service,
      workflowId: serviceWorkflowId(name),
      temporalUi: link(serviceWorkflowId(name)),
      versions: list.map(({ version, state, hash, createdAt }) => ({ version, state, hash, createdAt })),
    } satisfies ServiceDetail);
  });

  router.get('/services/:name/versions', async (req, res) => {
    const name = serviceParam(req.params.name);
    const state = req.query.state === undefined ? undefined : String(req.query.state);
    if (state !== undefined && !VERSION_STATES.includes(state as VersionState)) {
      throw new HttpError(400, 'bad_query', `state must be one of ${VERSION_STATES.join(', ')}`);
    }
    res.json({ service: name, versions: await versions.list(name, state as VersionState | undefined) } satisfies VersionList);
  });

  router.get('/services/:name/versions/:version', async (req, res) => {
    const doc = await versions.get(serviceParam(req.params.name), versionParam(req.params.version)).catch(asHttp);
    res.json(doc);
  });

  router.post('/services/:name/versions/:version/archive', async (req, res) => {
    const doc = await versions.archive(serviceParam(req.params.name), versionParam(req.params.version), 'archived through the API').catch(asHttp);
    res.json(doc);
  });

  router.post('/services/:name/versions/:version/restore', async (req, res) => {
    const doc = await versions.restore(serviceParam(req.params.name), versionParam(req.params.version)).catch(asHttp);
    res.json(doc);
  });

  return router;
}
