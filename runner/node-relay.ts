/**
 * Makes a loopback-only instance reachable at the node's bind address: an HTTP relay that forwards
 * each request to 127.0.0.1:<target> with the Host header set to that, because MCP servers guard
 * against DNS rebinding and accept only localhost names. Bodies are piped both ways, so SSE
 * streams pass as they come. The target changes when the instance restarts on another port; the
 * relay's own port (the advertised one) stays.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Relay {
  port: number;
  target: number;
  close(): Promise<void>;
}

export async function startRelay(bindHost: string): Promise<Relay> {
  const agent = new http.Agent({ keepAlive: true });
  const relay: Relay = { port: 0, target: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: relay.target, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${relay.target}` }, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, bindHost, resolve));
  relay.port = (server.address() as AddressInfo).port;
  relay.close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
      agent.destroy();
    });
  return relay;
}

/** Loopback hosts need no relay: the gateway is on the same machine and the instance answers there. */
export function needsRelay(advertiseHost: string): boolean {
  return !['127.0.0.1', 'localhost', '::1'].includes(advertiseHost);
}
