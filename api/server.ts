import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { errorHandler, notFound } from './errors.ts';

export interface ApiDeps {
  config: Config;
  store: Store;
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
