/**
 * The contract between the gateway proxy and what watches its traffic (metrics, breaker, capture).
 * The gateway reports; observers never answer back, so a slow or broken observer cannot slow or
 * break a proxied request.
 */

/** One parsed JSON-RPC message. Observers may keep the object: do not mutate it after reporting. */
export type JsonRpcMessage = Record<string, unknown>;

/** One HTTP exchange between a client and one instance of a version (a POST, or a GET stream). */
export interface ExchangeContext {
  service: string;
  version: string;
  instanceId: string;
  sessionId?: string;
  /**
   * The MCP protocol revision of the exchange when known: the one the request names (`_meta` or
   * MCP-Protocol-Version), else the one its session negotiated (docs/protocol.md).
   */
  protocolRevision?: string;
  /** 'stateless' (2026-07-28 on: no session) or 'session' (the revisions negotiated in initialize). */
  generation?: 'session' | 'stateless';
  /**
   * Who asked, for routing without a session (api/gateway/client-key.ts): `client:<X-Mcpship-Client>`,
   * or a hash prefixed `cred:`, `info:` or `addr:`. Never a raw credential.
   */
  clientKey?: string;
  /**
   * The JSON-RPC methods of the client's requests in this exchange (none for a GET, a DELETE or
   * notifications): whether it did work decides if it counts for health (core/health.ts countsForHealth).
   */
  methods?: readonly string[];
  /** performance.now() when the gateway received the request. */
  startedAt: number;
  /** The version the client pinned (api/gateway/pinning.ts), when it differs from `version` or was asked for. */
  versionAsked?: string;
  /** W3C trace id (the client's `traceparent`, or one the gateway made and forwarded). */
  traceId?: string;
  /** The client's clientInfo (initialize, or a stateless request's `_meta`), when known. */
  clientName?: string;
  clientVersion?: string;
  /** Transform ids of the chain between versionAsked and version, oldest first. */
  transforms?: string[];
}

/**
 * How an exchange ended. rpcErrors/toolErrors: the sum of countMessageErrors (core/health.ts) over
 * the server's messages of this exchange. httpStatus 0: no response at all.
 * Report only exchanges that reached an instance: answers the gateway makes itself (404 for a
 * pulled session, errors while a breaker is open) are not the version's doing.
 */
export interface ExchangeOutcome {
  httpStatus: number;
  latencyMs: number;
  timedOut: boolean;
  rpcErrors: number;
  toolErrors: number;
  /**
   * Server messages passed to the client but not reported to message(): a JSON body or SSE event
   * longer than the tap's bound (16 MiB). Absent: none.
   */
  unreported?: number;
}

export interface TrafficObserver {
  /**
   * Every JSON-RPC message, both ways, as it passes (SSE events one by one). Never throws nor blocks.
   * raw: the message's JSON text exactly as it passed, when the gateway has it (capture stores it).
   */
  message(
    ctx: ExchangeContext,
    direction: 'client_to_server' | 'server_to_client',
    msg: JsonRpcMessage,
    transport: 'json' | 'sse',
    size: number,
    raw?: string,
  ): void;
  /** Once per exchange, when its response is complete (or failed). Never throws nor blocks. */
  exchangeEnd(ctx: ExchangeContext, outcome: ExchangeOutcome): void;
}

/** Several observers behind one; one that throws anyway does not keep the others from seeing. */
export function fanOut(...observers: TrafficObserver[]): TrafficObserver {
  return {
    message(ctx, direction, msg, transport, size, raw) {
      for (const o of observers) {
        try {
          o.message(ctx, direction, msg, transport, size, raw);
        } catch {
          // An observer's bug must not become a proxy failure.
        }
      }
    },
    exchangeEnd(ctx, outcome) {
      for (const o of observers) {
        try {
          o.exchangeEnd(ctx, outcome);
        } catch {
          // As above.
        }
      }
    },
  };
}
