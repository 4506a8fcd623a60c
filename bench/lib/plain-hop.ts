/**
 * The reference point of bench/gateway-overhead.ts: a plain express + http-proxy-middleware hop in
 * front of the MCP server, with none of mcpship's work (no routing decision, session table, health,
 * breaker, tap or capture) — what the "about 0.4 ms per call" was measured on. A process
 * of its own, like the gateway's (bench/lib/gateway-process.ts), so that the CPU per call of each
 * is its own and they compare.
 *
 *   fork('bench/lib/plain-hop.ts', [JSON.stringify({ target: 'http://127.0.0.1:…/mcp' })], { execArgv: ['--import', 'tsx'] })
 *
 * Listens on a free port, proxies `/mcp` to `target` (keep-alive agent, responses piped by
 * http-proxy itself: selfHandleResponse false). Over IPC: `{ kind: 'ready', url }` once listening
 * (url: the MCP endpoint); `'stats'` is answered with its CPU and memory; `'close'` exits.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { GatewayReply } from './gateway-process.ts';
import { profilerMessage } from './child-profiler.ts';
import { ownStats } from './own-stats.ts';

const { target } = JSON.parse(process.argv[2] ?? '{}') as { target: string };
const send = (reply: GatewayReply) => process.send!(reply);

const app = express();
app.use('/mcp', createProxyMiddleware({ target, ignorePath: true, changeOrigin: true, agent: new http.Agent({ keepAlive: true }) }));
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));

process.on('message', (message: string) => {
  if (profilerMessage(message)) return;
  if (message === 'stats') send({ kind: 'stats', stats: ownStats() });
  else if (message === 'close') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
send({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` });
