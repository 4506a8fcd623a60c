/**
 * Serves a stdio MCP server over Streamable HTTP, so that the gateway speaks one protocol to every
 * instance. A stdio server holds the state of exactly one client, so each MCP session gets its own
 * child process: started on `initialize`, ended when the session is deleted, when the bridge
 * closes, or (the other way round) the session ends when its child dies. JSON-RPC messages are
 * forwarded unchanged both ways through the SDK's own transports, which keep the HTTP side
 * (sessions, SSE streams, protocol-version checks) to the spec.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { localhostHostValidation } from '@modelcontextprotocol/sdk/server/middleware/hostHeaderValidation.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';

export interface StdioBridgeOptions {
  /** The stdio server to start per session, e.g. `node` with `["dist/index.js"]`. */
  command: string;
  args?: string[];
  cwd?: string;
  /** Laid over the SDK's safe default environment (PATH, HOME, ...). */
  env?: Record<string, string>;
  /** 0 (the default) picks a free port; read it back from `port`. */
  port?: number;
  /** The bridge only ever listens on loopback; Host is checked against localhost names. */
  host?: '127.0.0.1' | 'localhost';
  path?: string;
  maxBodyBytes?: number;
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
  /** Ends every session (and so every child) and stops listening. */
  close(): Promise<void>;
}

const rpcError = (code: number, message: string) => ({ jsonrpc: '2.0' as const, error: { code, message }, id: null });

/** The id of a request or response; undefined for notifications. */
const idOf = (message: JSONRPCMessage): RequestId | undefined => (message as { id?: RequestId }).id;

type Kind = 'request' | 'notification' | 'response';
function kindOf(message: JSONRPCMessage): Kind {
  if ('method' in message) return 'id' in message ? 'request' : 'notification';
  return 'response';
}

function progressTokenOf(message: JSONRPCMessage): string | number | undefined {
  const { method, params } = message as { method?: string; params?: Record<string, unknown> };
  const token = method === 'notifications/progress' ? params?.progressToken : (params?._meta as Record<string, unknown> | undefined)?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

/** One MCP session: an HTTP server transport wired to one stdio child. */
class BridgedSession {
  readonly http: StreamableHTTPServerTransport;
  readonly stdio: StdioClientTransport;
  /** Client requests the child has not answered yet. */
  private readonly open = new Set<RequestId>();
  private readonly progress = new Map<string | number, RequestId>();
  private ending: Promise<void> | undefined;

  constructor(
    options: StdioBridgeOptions,
    onInitialized: (session: BridgedSession, id: string) => void,
    private readonly onEnded: (session: BridgedSession) => void,
    private readonly log: (line: string) => void,
  ) {
    this.stdio = new StdioClientTransport({
      command: options.command,
      args: options.args ?? [],
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
      // The child's log lines join the bridge's, which the runner writes to the instance log.
      stderr: 'inherit',
    });
    this.http = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => onInitialized(this, id),
    });
    this.http.onmessage = (message) => this.toChild(message);
    this.stdio.onmessage = (message) => this.toClient(message);
    this.http.onclose = () => void this.end();
    this.stdio.onclose = () => void this.end();
    this.http.onerror = (err) => this.log(`session ${this.http.sessionId ?? '(new)'}: http: ${err.message}`);
    this.stdio.onerror = (err) => this.log(`session ${this.http.sessionId ?? '(new)'}: stdio: ${err.message}`);
  }

  async start(): Promise<void> {
    await this.stdio.start();
    await this.http.start();
  }

  private toChild(message: JSONRPCMessage): void {
    const kind = kindOf(message);
    const id = idOf(message);
    if (kind === 'request' && id !== undefined) {
      this.open.add(id);
      const token = progressTokenOf(message);
      if (token !== undefined) this.progress.set(token, id);
    } else if (kind === 'notification' && 'method' in message && message.method === 'notifications/cancelled') {
      // The child will not answer a cancelled request; its HTTP stream is the client's to drop.
      const cancelled = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      if (cancelled !== undefined) this.forget(cancelled);
    }
    this.stdio.send(message).catch((err: Error) => {
      this.log(`session ${this.http.sessionId}: cannot write to the stdio server: ${err.message}`);
      if (kind === 'request' && id !== undefined) {
        this.forget(id);
        const error = { jsonrpc: '2.0' as const, id, error: { code: -32603, message: 'The stdio MCP server is not available' } };
        void this.http.send(error).catch(() => {});
      }
    });
  }

  /**
   * stdio carries no link between a server's notification (or request) and the client request it
   * belongs to, but Streamable HTTP wants related messages on that request's SSE stream. Progress
   * names its request through the progress token; otherwise a message sent while exactly one
   * request is open belongs to it (a log line or a sampling request during a tool call), and
   * anything else goes to the session's GET stream.
   */
  private relatedRequest(message: JSONRPCMessage): RequestId | undefined {
    const token = progressTokenOf(message);
    const byToken = token === undefined ? undefined : this.progress.get(token);
    if (byToken !== undefined) return byToken;
    if (this.open.size === 1) return this.open.values().next().value;
    return undefined;
  }

  private toClient(message: JSONRPCMessage): void {
    if (kindOf(message) === 'response') {
      const id = idOf(message);
      if (id !== undefined) this.forget(id);
      this.http.send(message).catch((err: Error) => this.log(`session ${this.http.sessionId}: response not delivered: ${err.message}`));
      return;
    }
    const related = this.relatedRequest(message);
    const send = (relatedRequestId?: RequestId) => this.http.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
    send(related)
      // The request's stream may be gone already (client went away); the GET stream is the fallback.
      .catch(() => (related === undefined ? Promise.reject(new Error('no stream')) : send()))
      .catch((err: Error) => this.log(`session ${this.http.sessionId}: message not delivered: ${err.message}`));
  }

  private forget(id: RequestId): void {
    this.open.delete(id);
    for (const [token, requestId] of this.progress) if (requestId === id) this.progress.delete(token);
  }

  /** Idempotent: closes both sides; resolves once the child has exited (or been killed). */
  end(): Promise<void> {
    this.ending ??= (async () => {
      // Both transports call back into end() while closing; yielding first lets `ending` be set.
      await null;
      this.onEnded(this);
      await this.http.close().catch(() => {});
      await this.stdio.close().catch(() => {});
    })();
    return this.ending;
  }
}

export async function createStdioBridge(options: StdioBridgeOptions): Promise<StdioBridge> {
  const host = options.host ?? '127.0.0.1';
  const mcpPath = options.path ?? '/mcp';
  const log = options.log ?? ((line: string) => console.error(`stdio-bridge: ${line}`));
  const sessions = new Map<string, BridgedSession>();
  /** Every session whose child runs, initialized or not, so that close() misses none. */
  const live = new Set<BridgedSession>();
  let closing = false;

  const app = express();
  app.disable('x-powered-by');
  // DNS rebinding protection: a loopback server answers only to localhost names.
  app.use(localhostHostValidation());
  app.use(express.json({ limit: options.maxBodyBytes ?? 4 * 1024 * 1024 }));

  const sessionOf = (req: Request, res: Response): BridgedSession | undefined => {
    const id = req.get('mcp-session-id');
    if (!id) return void res.status(400).json(rpcError(-32000, 'Bad Request: no valid Mcp-Session-Id header'));
    const session = sessions.get(id);
    if (!session) res.status(404).json(rpcError(-32001, 'Session not found'));
    return session;
  };

  const openSession = async (req: Request, res: Response): Promise<void> => {
    if (closing) return void res.status(503).json(rpcError(-32000, 'The bridge is shutting down'));
    const session = new BridgedSession(
      options,
      (s, id) => void sessions.set(id, s),
      (s) => {
        live.delete(s);
        if (s.http.sessionId) sessions.delete(s.http.sessionId);
      },
      log,
    );
    live.add(session);
    try {
      await session.start();
    } catch (err) {
      await session.end();
      log(`cannot start ${options.command}: ${(err as Error).message}`);
      return void res.status(500).json(rpcError(-32603, 'The stdio MCP server could not be started'));
    }
    await session.http.handleRequest(req, res, req.body);
    // An initialize the transport refused never got a session: its child has nobody to serve.
    if (!session.http.sessionId) await session.end();
  };

  app.post(mcpPath, async (req, res) => {
    if (!req.get('mcp-session-id') && isInitializeRequest(req.body)) return openSession(req, res);
    return sessionOf(req, res)?.http.handleRequest(req, res, req.body);
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
    close: async () => {
      closing = true;
      await Promise.all([...live].map((s) => s.end()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
