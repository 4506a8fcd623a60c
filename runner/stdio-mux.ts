/**
 * One stdio server process shared by many stateless (2026-07-28) HTTP exchanges.
 *
 * stdio is one channel with one JSON-RPC id space, and clients choose their ids (and progress
 * tokens) independently, so two clients' `id: 1` would collide. Every request therefore gets an id
 * of the bridge's own on its way in, and its progress token is replaced the same way; what the
 * server writes back is routed by those values and the client's own restored:
 * - a response by its id;
 * - `notifications/progress` by its progress token;
 * - notifications on a `subscriptions/listen` stream by `_meta` `io.modelcontextprotocol/subscriptionId`,
 *   which is the listen request's id (so it is rewritten back too);
 * - `notifications/message` carries nothing to route by: it goes to the one request in flight
 *   that asked for log messages (`_meta` `io.modelcontextprotocol/logLevel`), and is dropped (and
 *   logged) when several did, rather than risk showing one client another's log.
 * A server must not send requests to a 2026-07-28 client over stdio (MRTR replaces them); one that
 * does gets a JSON-RPC error back so that it does not wait forever.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

export const SUBSCRIPTION_ID_KEY = 'io.modelcontextprotocol/subscriptionId';
export const LOG_LEVEL_KEY = 'io.modelcontextprotocol/logLevel';

/** The HTTP side of one request (runner/stateless-http.ts). */
export interface Exchange {
  /** A notification related to the request, or its response (then the last call). */
  deliver(message: JSONRPCMessage): void;
  /** The request will get no response: its process exited, or the server ended the subscription. */
  end(reason: string): void;
}

interface Route {
  exchange: Exchange;
  clientId: RequestId;
  /** The client's progress token, when it asked for progress. */
  clientToken?: string | number;
  listen: boolean;
  wantsLogs: boolean;
}

type Meta = Record<string, unknown>;
type Params = { _meta?: Meta; [key: string]: unknown };

const metaOf = (params: unknown): Meta | undefined => (params as Params | undefined)?._meta;

export class SharedChild {
  private nextId = 0;
  private readonly routes = new Map<number, Route>();
  private exited = false;

  constructor(
    private readonly transport: Transport,
    /** The process, for logs and for the bridge's listing. */
    readonly pid: number | null,
    private readonly log: (line: string) => void,
    onExit: (child: SharedChild) => void,
  ) {
    transport.onmessage = (message) => this.fromChild(message);
    transport.onerror = (err) => this.log(`shared process ${pid}: ${err.message}`);
    transport.onclose = () => {
      this.exited = true;
      const open = [...this.routes.values()];
      this.routes.clear();
      for (const route of open) route.exchange.end('The stdio MCP server exited');
      onExit(this);
    };
  }

  /** Requests in flight, subscriptions not counted (they are long-lived and cost nothing while quiet). */
  get load(): number {
    let n = 0;
    for (const route of this.routes.values()) if (!route.listen) n++;
    return n;
  }

  /** Requests in flight that asked for log messages. */
  get loggingRequests(): number {
    let n = 0;
    for (const route of this.routes.values()) if (route.wantsLogs && !route.listen) n++;
    return n;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Sends the request on; returns the cancel function for when the client goes away first. */
  dispatch(request: JSONRPCRequest, exchange: Exchange): () => void {
    const childId = ++this.nextId;
    const meta = metaOf(request.params);
    const clientToken = meta?.progressToken as string | number | undefined;
    const route: Route = {
      exchange,
      clientId: request.id,
      ...(clientToken !== undefined ? { clientToken } : {}),
      listen: request.method === 'subscriptions/listen',
      wantsLogs: meta?.[LOG_LEVEL_KEY] !== undefined,
    };
    this.routes.set(childId, route);
    const outbound: JSONRPCRequest = {
      ...request,
      id: childId,
      ...(clientToken !== undefined ? { params: { ...request.params, _meta: { ...meta, progressToken: childId } } } : {}),
    };
    this.transport.send(outbound).catch((err: Error) => {
      if (this.routes.delete(childId)) exchange.end(`The stdio MCP server is not available: ${err.message}`);
    });
    return () => {
      // stdio has no stream to close: cancelling is a notification (for a subscription too).
      if (!this.routes.delete(childId) || this.exited) return;
      this.transport
        .send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: childId, reason: 'The client went away' } })
        .catch(() => {});
    };
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private fromChild(message: JSONRPCMessage): void {
    if (!('method' in message)) return this.response(message);
    if ('id' in message) return this.refuseRequest(message);
    const { method } = message;
    const params = message.params as Params | undefined;
    if (method === 'notifications/progress') {
      const route = this.routes.get(params?.progressToken as number);
      if (route?.clientToken !== undefined) return route.exchange.deliver({ ...message, params: { ...params, progressToken: route.clientToken } });
    }
    const subscription = params?._meta?.[SUBSCRIPTION_ID_KEY];
    if (subscription !== undefined) {
      const route = this.routes.get(subscription as number);
      if (route?.listen) return route.exchange.deliver({ ...message, params: { ...params, _meta: { ...params!._meta, [SUBSCRIPTION_ID_KEY]: route.clientId } } });
    }
    if (method === 'notifications/cancelled') {
      // The server tears a subscription down; over HTTP that is the end of its stream.
      const childId = params?.requestId as number;
      const route = this.routes.get(childId);
      if (route?.listen) {
        this.routes.delete(childId);
        return route.exchange.end('The server ended the subscription');
      }
    }
    if (method === 'notifications/message') {
      const asking = [...this.routes.values()].filter((r) => r.wantsLogs && !r.listen);
      if (asking.length === 1) return asking[0]!.exchange.deliver(message);
      return this.log(`shared process ${this.pid}: a log message with ${asking.length} requests asking for logs dropped (stdio cannot say which one it belongs to)`);
    }
    this.log(`shared process ${this.pid}: ${method} belongs to no open request; dropped`);
  }

  private response(message: JSONRPCMessage): void {
    const childId = (message as { id?: number }).id;
    const route = childId === undefined ? undefined : this.routes.get(childId);
    // A response to a request whose client went away (and was cancelled) has nobody to go to.
    if (!route || childId === undefined) return;
    this.routes.delete(childId);
    let restored = { ...message, id: route.clientId } as JSONRPCMessage;
    const result = (restored as { result?: { _meta?: Meta } }).result;
    if (route.listen && result?._meta?.[SUBSCRIPTION_ID_KEY] !== undefined) {
      restored = { ...restored, result: { ...result, _meta: { ...result._meta, [SUBSCRIPTION_ID_KEY]: route.clientId } } } as JSONRPCMessage;
    }
    route.exchange.deliver(restored);
  }

  private refuseRequest(message: JSONRPCRequest): void {
    this.log(`shared process ${this.pid}: sent a ${message.method} request, which stateless clients cannot answer`);
    const error = {
      code: -32601,
      message: 'Server-to-client requests cannot reach stateless (2026-07-28) clients; return an input_required result instead',
    };
    this.transport.send({ jsonrpc: '2.0', id: message.id, error }).catch(() => {});
  }
}
