/**
 * The MCP spec's transport security for a local server: refuse browsers from origins not on the
 * allow-list, and — when bound to loopback — Host headers that are not loopback names, which is
 * what a DNS-rebinding page sends. Both run before the body is read.
 */
import type { RequestHandler } from 'express';
import { jsonRpcError, SERVER_ERROR } from '../../core/routing.ts';

const LOOPBACK_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The hostname of a Host header (any port), or undefined when it does not parse. */
export function hostnameOf(hostHeader: string): string | undefined {
  try {
    const url = new URL(`http://${hostHeader}`);
    // A Host header is host[:port] only; anything that parses into more is a trick.
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
    return url.hostname;
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

function forbid(res: Parameters<RequestHandler>[1], message: string): void {
  res.status(403).json(jsonRpcError(SERVER_ERROR, `Forbidden: ${message}`));
}

export interface SecurityOptions {
  /** The address the API is bound to (config.api.host). */
  bindHost: string;
  /** Browser origins allowed to call the gateway (config.api.allowedOrigins). */
  allowedOrigins: readonly string[];
}

/**
 * No Origin header means a non-browser client, which a browser page cannot impersonate. Host is
 * only checked for a loopback bind: elsewhere the names it is reached by are not known here.
 */
export function securityGuard(opts: SecurityOptions): RequestHandler {
  const allowed = new Set(opts.allowedOrigins.map((o) => new URL(o).origin));
  const checkHost = isLoopbackBind(opts.bindHost);
  return (req, res, next) => {
    if (checkHost) {
      const host = req.headers.host;
      const hostname = host === undefined ? undefined : hostnameOf(host);
      if (hostname === undefined || !LOOPBACK_HOSTNAMES.has(hostname)) return forbid(res, `host ${JSON.stringify(host ?? '')} is not allowed`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, allowed)) return forbid(res, `origin ${JSON.stringify(origin)} is not allowed`);
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
