import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import express from 'express';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import type { EventStore } from '../core/events.ts';
import { VersionRepo } from '../core/version-repo.ts';
import { adminAuth } from './admin-auth.ts';
import { errorHandler, notFound } from './errors.ts';
import { createTrafficGateway, type TrafficGateway } from './gateway/traffic-gateway.ts';
import { DeploymentControl } from './deployment-control.ts';
import { deploymentsRouter } from './routes/deployments.ts';
import { eventsRouter } from './routes/events.ts';
import { trafficRouter } from './routes/traffic.ts';
import { servicesRouter } from './routes/services.ts';

export interface ApiDeps {
  config: Config;
  store: Store;
  events: EventStore;
  log: Logger;
  temporalAddress: string;
  temporalUiUrl?: string;
  /** Lets the gateway tell a deployment workflow that its canary breached. */
  temporal?: Client;
}

export function createApp(deps: ApiDeps, traffic: TrafficGateway): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // The gateway reads raw bodies itself, so it comes before any body parser.
  app.use('/mcp', traffic.gateway.router);
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
  app.use('/api', trafficRouter({ store: deps.store, traffic }));
  if (deps.temporal) app.use('/api', deploymentsRouter(new DeploymentControl(deps.config, deps.store, deps.temporal), requireAdmin));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}

export interface ApiHandle {
  url: string;
  server: Server;
  traffic: TrafficGateway;
  close(): Promise<void>;
}

export async function startApi(deps: ApiDeps): Promise<ApiHandle> {
  const traffic = createTrafficGateway(deps);
  const app = createApp(deps, traffic);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(deps.config.api.port, deps.config.api.host, () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${deps.config.api.host}:${port}`,
    server,
    traffic,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await traffic.close();
    },
  };
}
