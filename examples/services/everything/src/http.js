import { randomUUID } from 'node:crypto';
import { getRequestListener } from '@hono/node-server';
import {
  WebStandardStreamableHTTPServerTransport,
  createMcpHandler,
  hostHeaderValidationResponse,
  isInitializeRequest,
  isLegacyRequest,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  originValidationResponse,
} from '@modelcontextprotocol/server';
import { Hub } from './hub.js';
import { createServer } from './server.js';

/** @param {number} status @param {number} code @param {string} message */
const rpcError = (status, code, message) => Response.json({ jsonrpc: '2.0', error: { code, message }, id: null }, { status });

/**
 * One MCP endpoint for both protocol generations, routed per request as the SDK documents:
 * requests carrying the 2026-07-28 `_meta` envelope go to the stateless handler (a fresh server per
 * request); everything else (initialize, Mcp-Session-Id requests, GET/DELETE) to 2025 sessions, one
 * server per session. Host and Origin are checked first (DNS rebinding protection for a localhost
 * server).
 * @param {string} path
 */
export function createApp(path = '/mcp') {
  const hub = new Hub();
  /** @type {Map<string, WebStandardStreamableHTTPServerTransport>} */
  const sessions = new Map();
  const onerror = (/** @type {Error} */ err) => console.error('everything:', err.message);
  const modern = createMcpHandler(() => createServer(hub, 'modern'), { legacy: 'reject', onerror });
  hub.notifier = modern.notify;

  /** A 2025-era request: a new session on initialize, else the session named by Mcp-Session-Id. */
  async function legacy(/** @type {Request} */ request) {
    const id = request.headers.get('mcp-session-id');
    if (id) return sessions.get(id)?.handleRequest(request) ?? rpcError(404, -32001, 'Session not found');
    if (request.method !== 'POST') return rpcError(400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    /** @type {unknown} */
    let body;
    try {
      body = await request.json();
    } catch {
      return rpcError(400, -32700, 'Parse error');
    }
    if (!isInitializeRequest(body)) return rpcError(400, -32000, 'everything: a 2025-era request without Mcp-Session-Id must be initialize');
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sessionId) => void sessions.set(sessionId, transport),
      onsessionclosed: (sessionId) => void sessions.delete(sessionId),
    });
    transport.onclose = () => void (transport.sessionId && sessions.delete(transport.sessionId));
    await createServer(hub, 'legacy').connect(transport);
    return transport.handleRequest(request, { parsedBody: body });
  }

  /** @param {Request} request @returns {Promise<Response>} */
  async function fetch(request) {
    if (new URL(request.url).pathname !== path) return rpcError(404, -32000, `Not found: the MCP endpoint is ${path}`);
    const refused = hostHeaderValidationResponse(request, localhostAllowedHostnames()) ?? originValidationResponse(request, localhostAllowedOrigins());
    if (refused) return refused;
    return (await isLegacyRequest(request)) ? legacy(request) : modern.fetch(request);
  }

  const listener = getRequestListener(fetch, { overrideGlobalObjects: false });
  const closeAll = async () => {
    await Promise.allSettled([...sessions.values()].map((transport) => transport.close()));
    sessions.clear();
    await modern.close();
  };
  return { listener, fetch, sessions, hub, closeAll };
}
