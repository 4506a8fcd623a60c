/**
 * Serves a stdio MCP server over Streamable HTTP, so that the gateway speaks one protocol to every
 * instance. The protocol generation is decided per request, with the MCP SDK's own classifier:
 * - Session revisions (2025-03-26 … 2025-11-25): a stdio server holds the state of exactly one
 *   client, so each session gets a process of its own (runner/stdio-session.ts), handed over from
 *   the warm spares on `initialize` so that it does not wait for a process start. At most
 *   `maxSessions` at once (then 503), ended when deleted, idle, or when the bridge closes.
 * - Stateless requests (2026-07-28: protocol version and client capabilities in `_meta`, no
 *   session): served by a small pool of long-lived shared processes (runner/stdio-pool.ts), not
 *   a process per request.
 * Nothing the bridge starts outlives it: close() ends sessions, pool and spares, and the runner
 * signals the bridge's whole process group when it stops an instance.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { classifyInboundRequest } from '@modelcontextprotocol/server';
import { localhostHostValidation } from '@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { DEFAULT_STDIO, type StdioSettings } from '../core/manifest.ts';
import { headerMismatch } from './stateless-headers.ts';
import { serveStateless } from './stateless-http.ts';
import { StatelessPool } from './stdio-pool.ts';
import { BridgedSession } from './stdio-session.ts';
import { startChild, WarmSpares, type ChildSpec } from './stdio-spares.ts';

export interface StdioBridgeOptions extends ChildSpec, Partial<StdioSettings> {
  /** 0 (the default) picks a free port; read it back from `port`. */
  port?: number;
  /** The bridge only ever listens on loopback; Host is checked against localhost names. */
  host?: '127.0.0.1' | 'localhost';
  path?: string;
  maxBodyBytes?: number;
  /** Overrides `sessionIdleSec` with finer grain (tests). */
  sessionIdleMs?: number;
  log?: (line: string) => void;
}

export interface BridgeSessionInfo {
  sessionId: string;
  /** The session's stdio server process. */
  pid: number | null;
}

export interface StdioBridge {
  url: string;
  port: number;
  sessions(): BridgeSessionInfo[];
  /** The shared processes serving stateless clients. */
  statelessPids(): number[];
  /** The warm spares waiting for a session. */
  sparePids(): Promise<number[]>;
  /** Ends every session, shared process and spare, and stops listening. */
  close(): Promise<void>;
}

const rpcError = (code: number, message: string, id: unknown = null, data?: unknown) => ({
  jsonrpc: '2.0' as const,
  id: typeof id === 'string' || typeof id === 'number' ? id : null,
  error: { code, message, ...(data === undefined ? {} : { data }) },
});

export async function createStdioBridge(options: StdioBridgeOptions): Promise<StdioBridge> {
  const host = options.host ?? '127.0.0.1';
  const mcpPath = options.path ?? '/mcp';
  const log = options.log ?? ((line: string) => console.error(`stdio-bridge: ${line}`));
  const settings: StdioSettings = { ...DEFAULT_STDIO, ...definedOnly(options) };
  const idleMs = options.sessionIdleMs ?? settings.sessionIdleSec * 1000;
  const sessions = new Map<string, BridgedSession>();
  /** Every session whose child runs, initialized or not: what the cap counts and close() ends. */
  const live = new Set<BridgedSession>();
  /** Sessions being handed their process: counted by the cap, so that a burst cannot pass it. */
  let opening = 0;
  let closing = false;

  const spares = new WarmSpares(() => startChild(options), settings.warmSpares, log);
  spares.fill();
  const pool = new StatelessPool(() => spares.take(), settings.statelessPool, log);

  const app = express();
  app.disable('x-powered-by');
  // DNS rebinding protection: a loopback server answers only to localhost names.
  app.use(localhostHostValidation());
  app.use(express.json({ limit: options.maxBodyBytes ?? 4 * 1024 * 1024 }));

  const sessionOf = (req: Request, res: Response): BridgedSession | undefined => {
    const id = req.get('mcp-session-id');
    if (!id) return void res.status(400).json(rpcError(-32000, 'Bad Request: no valid Mcp-Session-Id header'));
    const session = sessions.get(id);
    if (!session) return void res.status(404).json(rpcError(-32001, 'Session not found'));
    // Every SDK client holds a GET stream open for as long as it lives, so only requests that do
    // work keep a session from going idle; otherwise the idle timeout would never end a session.
    if (req.method !== 'GET') session.track(res);
    return session;
  };

  const openSession = async (req: Request, res: Response): Promise<void> => {
    if (closing) return void res.status(503).json(rpcError(-32000, 'The bridge is shutting down', req.body?.id));
    if (live.size + opening >= settings.maxSessions) {
      const message = `Too many sessions: this stdio service runs at most ${settings.maxSessions} sessions per instance (stdio.maxSessions); end unused sessions or try again later`;
      return void res.status(503).json(rpcError(-32000, message, req.body?.id));
    }
    opening += 1;
    let session: BridgedSession;
    try {
      const child = await spares.take();
      session = new BridgedSession(child, idleMs, {
        onInitialized: (s, id) => void sessions.set(id, s),
        onEnded: (s) => {
          live.delete(s);
          if (s.http.sessionId) sessions.delete(s.http.sessionId);
        },
        log,
      });
    } catch (err) {
      log(`cannot start ${options.command}: ${(err as Error).message}`);
      return void res.status(500).json(rpcError(-32603, 'The stdio MCP server could not be started', req.body?.id));
    } finally {
      opening -= 1;
    }
    live.add(session);
    if (closing) {
      await session.end();
      return void res.status(503).json(rpcError(-32000, 'The bridge is shutting down', req.body?.id));
    }
    await session.start();
    session.track(res);
    await session.http.handleRequest(req, res, req.body);
    // An initialize the transport refused never got a session: its child has nobody to serve.
    if (!session.http.sessionId) await session.end();
  };

  app.post(mcpPath, async (req, res) => {
    if (req.get('mcp-session-id')) return sessionOf(req, res)?.http.handleRequest(req, res, req.body);
    const route = classifyInboundRequest({
      httpMethod: req.method,
      protocolVersionHeader: req.get('mcp-protocol-version'),
      mcpMethodHeader: req.get('mcp-method'),
      mcpNameHeader: req.get('mcp-name'),
      body: req.body,
    });
    if (route.kind === 'reject') return void res.status(route.httpStatus).json(rpcError(route.code, route.message, req.body?.id, route.data));
    if (route.kind === 'modern') {
      if (closing) return void res.status(503).json(rpcError(-32000, 'The bridge is shutting down', req.body?.id));
      // The 2026-07-28 revision defines no client notification over HTTP (cancelling is closing the stream).
      if (route.messageKind === 'notification') return void res.status(202).end();
      const request = route.message as JSONRPCRequest;
      const mismatch = headerMismatch({ protocolVersion: req.get('mcp-protocol-version'), method: req.get('mcp-method'), name: req.get('mcp-name') }, request);
      if (mismatch) return void res.status(400).json(rpcError(-32020, `Bad Request: the request headers and body disagree: ${mismatch}`, request.id));
      return serveStateless(pool, request, req, res);
    }
    if (route.reason === 'initialize') return openSession(req, res);
    res.status(400).json(rpcError(-32000, 'Bad Request: no valid Mcp-Session-Id header', req.body?.id));
  });
  app.get(mcpPath, async (req, res) => sessionOf(req, res)?.http.handleRequest(req, res));
  app.delete(mcpPath, async (req, res) => sessionOf(req, res)?.http.handleRequest(req, res));
  app.all(mcpPath, (_req, res) => void res.status(405).set('Allow', 'GET, POST, DELETE').json(rpcError(-32000, 'Method not allowed')));
  app.use((_req, res) => void res.status(404).json(rpcError(-32000, 'Not found')));
  app.use((err: { type?: string; status?: number; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    if (err.type === 'entity.parse.failed') return void res.status(400).json(rpcError(-32700, 'Parse error'));
    if (err.type === 'entity.too.large') return void res.status(413).json(rpcError(-32000, 'Request body too large'));
    log(`request failed: ${err.message}`);
    res.status(500).json(rpcError(-32603, 'Internal error'));
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port ?? 0, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${host}:${port}${mcpPath}`,
    port,
    sessions: () => [...sessions].map(([sessionId, s]) => ({ sessionId, pid: s.stdio.pid })),
    statelessPids: () => pool.pids(),
    sparePids: () => spares.pids(),
    close: async () => {
      closing = true;
      await Promise.all([...[...live].map((s) => s.end()), pool.close(), spares.close()]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The settings the caller gave, so that an explicit `undefined` does not hide a default. */
function definedOnly(options: Partial<StdioSettings>): Partial<StdioSettings> {
  const out: Partial<StdioSettings> = {};
  for (const key of Object.keys(DEFAULT_STDIO) as (keyof StdioSettings)[]) if (options[key] !== undefined) out[key] = options[key];
  return out;
}
