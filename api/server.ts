import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import type { EventStore } from '../core/events.ts';
import { VersionRepo } from '../core/version-repo.ts';
import { adminAuth } from './admin-auth.ts';
import { errorHandler, notFound } from './errors.ts';
import { eventsRouter } from './routes/events.ts';
import { servicesRouter } from './routes/services.ts';

export interface ApiDeps {
  config: Config;
  store: Store;
  events: EventStore;
  log: Logger;
  temporalAddress: string;
  temporalUiUrl?: string;
}

export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/api/health', async (_req, res) => {
    await deps.store.db.command({ ping: 1 });
    res.json({ ok: true, temporal: deps.temporalAddress, temporalUi: deps.temporalUiUrl ?? null });
  });
  app.get('/api/meta', (_req, res) => {
    res.json({ namespace: deps.config.temporal.namespace, taskQueue: deps.config.temporal.taskQueue, temporalUi: deps.temporalUiUrl ?? null });
  });
  const versions = new VersionRepo(deps.config, deps.store, deps.events);
  const requireAdmin = adminAuth(deps.config.api.adminToken);
  app.use('/api', express.json({ limit: '100kb' }));
  app.use('/api', servicesRouter({ config: deps.config, store: deps.store, versions, requireAdmin, ...(deps.temporalUiUrl ? { temporalUiUrl: deps.temporalUiUrl } : {}) }));
  app.use('/api', eventsRouter(deps.events));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}

export interface ApiHandle {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startApi(deps: ApiDeps): Promise<ApiHandle> {
  const app = createApp(deps);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(deps.config.api.port, deps.config.api.host, () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${deps.config.api.host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
