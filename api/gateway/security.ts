/**
 * The MCP spec's transport security for a local server, applied to /mcp and /api alike: refuse Host
 * headers that are not names this server is known by (what a DNS-rebinding page sends) unless the
 * request shows the admin token, and refuse browsers from origins that are neither the server's own
 * nor on the allow-list. Both run before the body is read.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { tokenMatches } from '../../core/admin-token.ts';
import type { Config } from '../../core/config.ts';
import { jsonRpcError, SERVER_ERROR } from '../../core/routing.ts';

const LOOPBACK_HOSTNAMES = ['localhost', '127.0.0.1', '[::1]'];

export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The hostname and port of a Host header, or undefined when it does not parse. */
export function hostOf(hostHeader: string): { hostname: string; port: string } | undefined {
  try {
    const url = new URL(`http://${hostHeader}`);
    // A Host header is host[:port] only; anything that parses into more is a trick.
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
    return { hostname: url.hostname, port: url.port || '80' };
  } catch {
    return undefined;
  }
}

export function originAllowed(origin: string, allowed: ReadonlySet<string>): boolean {
  try {
    const parsed = new URL(origin).origin;
    return parsed !== 'null' && allowed.has(parsed);
  } catch {
    return false;
  }
}

/** The settings the guard reads (config.api, with the admin token resolved). */
export type SecuritySettings = Pick<Config['api'], 'host' | 'allowedOrigins' | 'allowedHosts' | 'adminToken'>;

export interface GuardOptions {
  /** Where a caller shows the admin token. Default: X-Mcpship-Admin-Token (on /mcp, Authorization belongs to the MCP server). */
  tokenFrom?: (req: IncomingMessage) => string | undefined;
  /** Writes the 403; default a JSON-RPC error. */
  forbid?: (res: Response, message: string) => void;
}

const adminTokenHeader = (req: IncomingMessage): string | undefined => {
  const value = req.headers['x-mcpship-admin-token'];
  return Array.isArray(value) ? value[0] : value;
};

export const bearerToken = (req: IncomingMessage): string | undefined => /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];

function forbidRpc(res: Response, message: string): void {
  res.status(403).json(jsonRpcError(SERVER_ERROR, `Forbidden: ${message}`));
}

/**
 * An origin is the server's own when it names a host this server trusts at the port the request
 * reached: the listening port, or the one in the Host header (a published or proxied port). A page
 * mcpship serves itself, or a local browser client at http://127.0.0.1:<port>, is then same-origin.
 */
function isOwnOrigin(origin: string, trusted: ReadonlySet<string>, ports: readonly (string | undefined)[]): boolean {
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return trusted.has(url.hostname) && ports.includes(port);
  } catch {
    return false;
  }
}

/**
 * Host: a loopback name or one of `allowedHosts` (any port), else the request must carry the admin
 * token — a page rebinding its own name to this address cannot know it. Binding beyond loopback
 * does not switch the check off: list the names clients use in MCPSHIP_ALLOWED_HOSTS. No Origin
 * header means a non-browser client, which a browser page cannot impersonate.
 */
export function securityGuard(settings: SecuritySettings, opts: GuardOptions = {}): RequestHandler {
  const allowedOrigins = new Set(settings.allowedOrigins.map((o) => new URL(o).origin));
  const trusted = new Set([...LOOPBACK_HOSTNAMES, ...settings.allowedHosts.map((h) => h.toLowerCase())]);
  const tokenFrom = opts.tokenFrom ?? adminTokenHeader;
  const forbid = opts.forbid ?? forbidRpc;
  return (req, res, next) => {
    const hostHeader = req.headers.host;
    const host = hostHeader === undefined ? undefined : hostOf(hostHeader);
    if (!host || (!trusted.has(host.hostname) && !tokenMatches(settings.adminToken, tokenFrom(req)))) {
      return forbid(res, `host ${JSON.stringify(hostHeader ?? '')} is not allowed (add its name to MCPSHIP_ALLOWED_HOSTS, or send the admin token)`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, allowedOrigins) && !isOwnOrigin(origin, trusted, [String(req.socket.localPort), host.port])) {
      return forbid(res, `origin ${JSON.stringify(origin)} is not allowed (add it to MCPSHIP_ALLOWED_ORIGINS)`);
    }
    next();
  };
}

/**
 * CORS for the origins the guard let through (it runs first, so any Origin here is allowed): a
 * browser client must be able to read Mcp-Session-Id to use its session.
 */
export function corsHeaders(origin: string | undefined, preflight = false): Record<string, string> {
  if (origin === undefined) return {};
  const headers: Record<string, string> = {
    'access-control-allow-origin': origin,
    vary: 'Origin',
    'access-control-expose-headers': 'Mcp-Session-Id, MCP-Protocol-Version, X-Mcpship-Version',
  };
  if (preflight) {
    headers['access-control-allow-methods'] = 'GET, POST, DELETE';
    headers['access-control-allow-headers'] = 'Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, X-Mcpship-Version';
    headers['access-control-max-age'] = '600';
  }
  return headers;
}
