import { randomUUID } from 'node:crypto';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createServer } from './server.js';

/** @param {number} code @param {string} message */
const rpcError = (code, message) => ({ jsonrpc: '2.0', error: { code, message }, id: null });

/**
 * The Streamable HTTP endpoint with sessions (Mcp-Session-Id), one McpServer per session.
 * Host validation (DNS rebinding) comes from createMcpExpressApp for a 127.0.0.1 server.
 * @param {string} path
 */
export function createApp(path = '/mcp') {
  /** @type {Map<string, StreamableHTTPServerTransport>} */
  const sessions = new Map();
  const app = createMcpExpressApp({ host: '127.0.0.1' });

  /** The session's transport, or undefined after answering 400 (no id) / 404 (unknown id). */
  const sessionOf = (/** @type {import('express').Request} */ req, /** @type {import('express').Response} */ res) => {
    const id = req.get('mcp-session-id');
    if (!id) return void res.status(400).json(rpcError(-32000, 'Bad Request: no valid Mcp-Session-Id header'));
    const transport = sessions.get(id);
    if (!transport) res.status(404).json(rpcError(-32001, 'Session not found'));
    return transport;
  };

  app.post(path, async (req, res) => {
    if (!req.get('mcp-session-id') && isInitializeRequest(req.body)) {
      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      transport.onclose = () => void (transport.sessionId && sessions.delete(transport.sessionId));
      await createServer().connect(transport);
      return transport.handleRequest(req, res, req.body);
    }
    return sessionOf(req, res)?.handleRequest(req, res, req.body);
  });
  // GET opens the session's SSE stream; DELETE ends the session.
  app.get(path, async (req, res) => sessionOf(req, res)?.handleRequest(req, res));
  app.delete(path, async (req, res) => sessionOf(req, res)?.handleRequest(req, res));
  app.all(path, (_req, res) => void res.status(405).set('Allow', 'GET, POST, DELETE').json(rpcError(-32000, 'Method not allowed')));

  // Errors (bad JSON included) are answered as JSON-RPC errors, not express's HTML pages.
  app.use(
    /** @type {(err: any, req: import('express').Request, res: import('express').Response, next: () => void) => void} */
    (err, _req, res, _next) => {
      const parse = err?.type === 'entity.parse.failed';
      if (!parse) console.error('calculator: request failed:', err);
      if (!res.headersSent) res.status(parse ? 400 : 500).json(rpcError(parse ? -32700 : -32603, parse ? 'Parse error' : 'Internal error'));
    },
  );

  const closeAll = async () => {
    await Promise.allSettled([...sessions.values()].map((t) => t.close()));
    sessions.clear();
  };
  return { app, sessions, closeAll };
}
