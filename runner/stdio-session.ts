/**
 * One MCP session of a session revision (2025-03-26 … 2025-11-25) at the stdio bridge: an HTTP
 * server transport wired to a stdio server process of its own, since a stdio server holds the
 * state of exactly one client. JSON-RPC messages pass unchanged both ways through the SDK's own
 * transports, which keep the HTTP side (sessions, SSE streams, protocol-version checks) to the spec.
 *
 * The session ends, and its process with it, when the client deletes it, when the process exits,
 * when the bridge closes, or when no request has been in flight for `idleMs` (an open GET stream
 * does not count): its next request then gets 404, which tells the client to start a new session.
 */
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';

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

export interface SessionHooks {
  onInitialized(session: BridgedSession, sessionId: string): void;
  onEnded(session: BridgedSession): void;
  log(line: string): void;
}

export class BridgedSession {
  readonly http: StreamableHTTPServerTransport;
  /** Client requests the child has not answered yet. */
  private readonly open = new Set<RequestId>();
  private readonly progress = new Map<string | number, RequestId>();
  /** Requests of this session still open (the bridge does not count GET streams). */
  private active = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private ending: Promise<void> | undefined;

  constructor(
    /** The session's stdio server, already running (a warm spare). */
    readonly stdio: StdioClientTransport,
    private readonly idleMs: number,
    private readonly hooks: SessionHooks,
  ) {
    this.http = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => hooks.onInitialized(this, id),
    });
    this.http.onmessage = (message) => this.toChild(message);
    this.stdio.onmessage = (message) => this.toClient(message);
    this.http.onclose = () => void this.end();
    this.stdio.onclose = () => void this.end();
    this.http.onerror = (err) => hooks.log(`session ${this.http.sessionId ?? '(new)'}: http: ${err.message}`);
    this.stdio.onerror = (err) => hooks.log(`session ${this.http.sessionId ?? '(new)'}: stdio: ${err.message}`);
  }

  start(): Promise<void> {
    return this.http.start();
  }

  /** Counts a request of the session as activity until its response is closed. */
  track(res: Response): void {
    this.active += 1;
    clearTimeout(this.idleTimer);
    res.once('close', () => {
      this.active -= 1;
      if (this.active === 0 && !this.ending) {
        this.idleTimer = setTimeout(() => {
          this.hooks.log(`session ${this.http.sessionId}: idle for ${this.idleMs} ms; ended`);
          void this.end();
        }, this.idleMs);
        this.idleTimer.unref();
      }
    });
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
      this.hooks.log(`session ${this.http.sessionId}: cannot write to the stdio server: ${err.message}`);
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
      this.http.send(message).catch((err: Error) => this.hooks.log(`session ${this.http.sessionId}: response not delivered: ${err.message}`));
      return;
    }
    const related = this.relatedRequest(message);
    const send = (relatedRequestId?: RequestId) => this.http.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
    send(related)
      // The request's stream may be gone already (client went away); the GET stream is the fallback.
      .catch(() => (related === undefined ? Promise.reject(new Error('no stream')) : send()))
      .catch((err: Error) => this.hooks.log(`session ${this.http.sessionId}: message not delivered: ${err.message}`));
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
      clearTimeout(this.idleTimer);
      this.hooks.onEnded(this);
      await this.http.close().catch(() => {});
      await this.stdio.close().catch(() => {});
    })();
    return this.ending;
  }
}
