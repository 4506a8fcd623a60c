/**
 * The reference points of bench/gateway-overhead.ts, with none of mcpship's work (no routing
 * decision, session table, health, breaker, tap or capture):
 *
 * - `express-hpm`: a plain express + http-proxy-middleware hop in front of the MCP server — what the
 *   issue's "about 0.4 ms per call" was measured on;
 * - `node`: a bare node:http proxy (one `http.request` per request, request and answer piped) —
 *   what Node's HTTP alone costs, below which no Node gateway goes.
 *
 * A process of its own, like the gateway's (bench/lib/gateway-process.ts), so that the CPU per call
 * of each is its own and they compare.
 *
 *   fork('bench/lib/plain-hop.ts', [JSON.stringify({ target: 'http://127.0.0.1:…/mcp', kind: 'node' })], { execArgv: ['--import', 'tsx'] })
 *
 * Listens on a free port, proxies `/mcp` to `target` (keep-alive agent, responses piped as they
 * come). Over IPC: `{ kind: 'ready', url }` once listening (url: the MCP endpoint); `'stats'` is
 * answered with its CPU and memory; `'close'` exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { GatewayReply } from './gateway-process.ts';
import { profilerMessage } from './child-profiler.ts';
import { ownStats } from './own-stats.ts';

export interface PlainHopArgs {
  target: string;
  kind: 'express-hpm' | 'node';
}

const { target, kind } = JSON.parse(process.argv[2] ?? '{}') as PlainHopArgs;
const send = (reply: GatewayReply) => process.send!(reply);
const agent = new http.Agent({ keepAlive: true });

function expressHop(): http.Server {
  const app = express();
  app.use('/mcp', createProxyMiddleware({ target, ignorePath: true, changeOrigin: true, agent }));
  return http.createServer(app);
}

function nodeHop(): http.Server {
  const upstream = new URL(target);
  return http.createServer((req, res) => {
    const headers = { ...req.headers, host: upstream.host };
    delete headers.connection;
    const proxyReq = http.request({ host: upstream.hostname, port: upstream.port, path: upstream.pathname, method: req.method, headers, agent }, (proxyRes) => {
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.headers);
      proxyRes.pipe(res);
    });
    proxyReq.on('error', () => res.destroy());
    req.pipe(proxyReq);
  });
}

const server = kind === 'node' ? nodeHop() : expressHop();
server.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));

process.on('message', (message: string) => {
  if (profilerMessage(message)) return;
  if (message === 'stats') send({ kind: 'stats', stats: ownStats() });
  else if (message === 'close') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` });
