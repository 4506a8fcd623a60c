import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import express from 'express';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import type { EventStore } from '../core/events.ts';
import { VersionRepo } from '../core/version-repo.ts';
import { resolveAdminToken } from '../core/admin-token.ts';
import { assertSafeBind, stateChangeGuard } from './admin-auth.ts';
import { errorHandler, notFound, type ErrorBody } from './errors.ts';
import { bearerToken, corsHeaders, securityGuard } from './gateway/security.ts';
import { createTrafficGateway, type TrafficGateway } from './gateway/traffic-gateway.ts';
import { DeploymentControl } from './deployment-control.ts';
import { deploymentsRouter } from './routes/deployments.ts';
import { replaysRouter } from './routes/replays.ts';
import { eventsRouter } from './routes/events.ts';
import { trafficRouter } from './routes/traffic.ts';
import { compatibilityRouter } from './routes/compatibility.ts';
import { servicesRouter } from './routes/services.ts';
import { dashboardRouter } from './routes/dashboard.ts';
import { dashboardSite } from './dashboard-site.ts';
import { alertsRouter } from './routes/alerts.ts';
import { metricsRouter } from './routes/metrics.ts';
import { startPlatformMetrics } from './platform-metrics.ts';

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

/**
 * Slow clients (slowloris: headers or a body trickled) are cut off. Node's defaults wait 60 s for the
 * headers and 5 min for a whole request, checked every 30 s. A request is its headers and body: the
 * streams that follow it (SSE from /mcp or /api/events/stream) are not limited.
 */
const SLOW_CLIENT_LIMITS = { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 };

/** A 403 in the API's error shape. */
function forbidApi(res: express.Response, message: string): void {
  res.status(403).json({ error: { code: 'forbidden', message: `Forbidden: ${message}` } } satisfies ErrorBody);
}

/** CORS for the origins the guard let through, so an allow-listed page can drive the API. */
const apiCors: express.RequestHandler = (req, res, next) => {
  const preflight = req.method === 'OPTIONS';
  res.set(corsHeaders(req.headers.origin, preflight));
  if (preflight) return void res.status(204).end();
  next();
};

/** `deps.config.api.adminToken` is the token in force (startApi resolves the stored one into it). */
export function createApp(deps: ApiDeps, traffic: TrafficGateway): express.Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  // The gateway reads raw bodies itself, so it comes before any body parser.
  app.use('/mcp', traffic.gateway.router);
  // Reads are guarded too: a DNS-rebinding page must not read events or versions either.
  app.use('/api', securityGuard(config.api, { tokenFrom: bearerToken, forbid: forbidApi }), apiCors, stateChangeGuard(config.api.adminToken));
  // Scrapes are reads like /api's: a DNS-rebinding page must not read them either.
  app.use('/metrics', securityGuard(config.api, { tokenFrom: bearerToken, forbid: forbidApi }));
  app.use(metricsRouter(traffic.registry));
  app.get('/api/health', async (_req, res) => {
    await deps.store.db.command({ ping: 1 });
    res.json({ ok: true, temporal: deps.temporalAddress, temporalUi: deps.temporalUiUrl ?? null });
  });
  app.get('/api/meta', (_req, res) => {
    res.json({ namespace: config.temporal.namespace, taskQueue: config.temporal.taskQueue, temporalUi: deps.temporalUiUrl ?? null });
  });
  const versions = new VersionRepo(config, deps.store, deps.events);
  app.use('/api', express.json({ limit: '100kb' }));
  app.use('/api', servicesRouter({ config, store: deps.store, versions, ...(deps.temporalUiUrl ? { temporalUiUrl: deps.temporalUiUrl } : {}) }));
  app.use('/api', eventsRouter(deps.events, { maxStreams: config.api.maxEventStreams }));
  app.use('/api', alertsRouter({ store: deps.store, events: deps.events }));
  app.use('/api', trafficRouter({ store: deps.store, traffic }));
  app.use('/api', compatibilityRouter({ store: deps.store }));
  app.use('/api', dashboardRouter({ config, store: deps.store, ...(deps.temporalUiUrl ? { temporalUiUrl: deps.temporalUiUrl } : {}) }));
  if (deps.temporal) {
    const control = new DeploymentControl(config, deps.store, deps.temporal);
    // Before the deployments router, whose POST /services/:name/:control would take /replays.
    app.use('/api', replaysRouter({ config, store: deps.store, events: deps.events, temporal: deps.temporal, control }));
    app.use('/api', deploymentsRouter(control));
  }
  app.use(dashboardSite(config.api));
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

/**
 * Starts the API and the gateway with the admin token in force (configured, else the one `mcpship
 * token` stored). Throws UnsafeBindError, before anything listens, when bound beyond loopback
 * without a strong token.
 */
export async function startApi(input: ApiDeps): Promise<ApiHandle> {
  const api = { ...input.config.api };
  const token = await resolveAdminToken(input.config);
  if (token) api.adminToken = token;
  assertSafeBind(api);
  const deps: ApiDeps = { ...input, config: { ...input.config, api } };
  const traffic = createTrafficGateway(deps);
  const platformMetrics = await startPlatformMetrics({ registry: traffic.registry, store: deps.store, events: deps.events, ...(deps.temporal ? { temporal: deps.temporal } : {}) });
  const app = createApp(deps, traffic);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(SLOW_CLIENT_LIMITS, app).listen(api.port, api.host, () => resolve(s));
    s.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  // A wildcard bind is reached, from here, on loopback: a loopback URL also passes the Host check.
  const reachable = api.host === '0.0.0.0' ? '127.0.0.1' : api.host === '::' ? '[::1]' : api.host;
  return {
    url: `http://${reachable}:${port}`,
    server,
    traffic,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      platformMetrics.stop();
      await traffic.close();
    },
  };
}
