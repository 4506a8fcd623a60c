/**
 * The MCP gateway: `/mcp/<service>` speaks Streamable HTTP to clients and proxies each request,
 * through http-proxy-middleware, to the instance the decision engine (decide.ts) chose. Responses
 * stream through as they arrive; a tap reads the JSON-RPC messages out of copies of the chunks for
 * the traffic observer (metrics, breaker, capture).
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Config } from '../../core/config.ts';
import { tokenMatches } from '../../core/admin-token.ts';
import type { EventStore } from '../../core/events.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../../core/mongo.ts';
import { isServiceName } from '../../core/service-name.ts';
import {
  INTERNAL_ERROR,
  INVALID_REQUEST,
  jsonRpcError,
  parseJsonRpcBody,
  REQUEST_TIMEOUT,
  requestIds,
  SERVER_ERROR,
  type Classified,
  type JsonRpcId,
  type JsonRpcMessage,
} from '../../core/routing.ts';
import { ClientInfoMemo, traceContext } from './augment.ts';
import { CACHEABLE_METHODS, TtlCapper } from './cache-hints.ts';
import { clientKey, CLIENT_HEADER } from './client-key.ts';
import { Decider, SESSION_NOT_FOUND, type BreakerView, type Decision, type RequestFacts } from './decide.ts';
import { jsonArrayItems } from './json-text.ts';
import { protocolFacts } from './protocol-generation.ts';
import { holdUntilAnswered, release, type Held } from './hold-answer.ts';
import { DEFAULT_TAP_MAX_BYTES, ResponseTap } from './response-tap.ts';
import { PIN_HEADER, type Pinning, type PinnedExchange } from './pinning.ts';
import { RoutingCache, type RoutingCacheOptions } from './routing-cache.ts';
import { corsHeaders, securityGuard } from './security.ts';
import { SessionTable, type SessionTableOptions } from './session-table.ts';
import type { ExchangeContext, TrafficObserver } from './traffic.ts';

export type { BreakerView } from './decide.ts';

export interface GatewayDeps {
  config: Config;
  store: Store;
  log: Logger;
  /** Records instances that stop answering (throttled), for the dashboard's timeline. */
  events?: Pick<EventStore, 'append'>;
  observer?: TrafficObserver;
  breaker?: BreakerView;
  /** For tests: the randomness behind weighted choice. */
  rand?: () => number;
  cache?: RoutingCacheOptions;
  sessions?: SessionTableOptions;
  /** Version pinning through transform chains (pinning.ts). */
  pinning?: Pinning;
}

export interface Gateway {
  /** Mount at /mcp, before any body parser: it reads request bodies itself, raw. */
  router: express.Router;
  cache: RoutingCache;
  sessions: SessionTable;
  close(): Promise<void>;
}

const METHODS = new Set(['GET', 'POST', 'DELETE']);
/** Connection-scoped headers a proxy must not pass on (RFC 9110 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const UNREACHABLE_EVENT_EVERY_MS = 10_000;
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);
/** More than one stale socket in a row is possible (several idle ones closed together), not many. */
const MAX_STALE_RETRIES = 3;
/** A dead node refuses for each of its instances; two more instances tried is plenty. */
const MAX_REFUSED_RETRIES = 2;

/** One proxied request, from the decision to the end of its response. */
interface Exchange {
  ctx: ExchangeContext;
  method: 'GET' | 'POST' | 'DELETE';
  target: string;
  body?: Buffer;
  messages: JsonRpcMessage[];
  classified: Classified[];
  batch: boolean;
  opensSession: boolean;
  /** The request belonged to a session the table knew. */
  sessionBound: boolean;
  /**
   * A stream the server holds open for notifications — a GET, or a 2026 `subscriptions/listen` —
   * rather than a request: no idle timeout once it answered, and its length is no latency.
   */
  channel: boolean;
  /** While more than one version is routable: the cap on ttlMs of the answers to `cacheableIds`. */
  ttlCapMs?: number;
  cacheableIds: Set<JsonRpcId>;
  capper?: TtlCapper;
  /** A pinned client's exchange (pinning.ts): its forwarded body and the rewriter of the answer. */
  pin?: PinnedExchange;
  rewriter?: NodeJS.ReadWriteStream;
  /** A traceparent the gateway made (the client sent none): forwarded to the server. */
  traceparent?: string;
  proxyReq?: ClientRequest;
  proxyRes?: IncomingMessage;
  tap?: ResponseTap;
  timer?: NodeJS.Timeout;
  clientMessagesSent: boolean;
  timedOut: boolean;
  /** Resends after a kept-alive connection the instance had closed (see onProxyError). */
  staleRetries: number;
  /** What the decision was made from, to decide again when the instance refuses the connection. */
  facts: RequestFacts;
  /** Instances that refused this request's connection. */
  refusedBy: Set<string>;
  /** No response came from the instance (refused, reset before the head). */
  noResponse: boolean;
  ended: boolean;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const one = Array.isArray(value) ? value[0] : value;
  const trimmed = one?.trim();
  return trimmed ? trimmed : undefined;
}

/** `{ [name]: value }` when value is defined, else nothing: for optional properties. */
function optional<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}

/** The revision an initialize asks for (the response's negotiated one replaces it). */
function requestedRevision(messages: readonly JsonRpcMessage[], initialize: boolean): string | undefined {
  const asked = initialize ? (messages[0]?.params as { protocolVersion?: unknown } | undefined)?.protocolVersion : undefined;
  return typeof asked === 'string' ? asked : undefined;
}

function flushHead(res: ServerResponse): void {
  if (!res.headersSent && !res.destroyed) res.flushHeaders();
}

function sendRpcError(res: Response, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.status(status).json(body);
}

export function createGateway(deps: GatewayDeps): Gateway {
  const { config, log } = deps;
  const observer = deps.observer;
  const cache = new RoutingCache(deps.store, { log, ...deps.cache });
  const sessions = new SessionTable(deps.store, { log, ...deps.sessions });
  /**
   * Ends a session for every gateway; awaited before the client hears of it, so that no gateway
   * routes it again. A failed write is logged: the answer goes out all the same.
   */
  const endSession = (sessionId: string) => sessions.close(sessionId).catch((err: unknown) => log.warn({ err, sessionId }, 'session close not saved'));
  const decider = new Decider({ cache, sessions, ...(deps.breaker ? { breaker: deps.breaker } : {}), ...(deps.rand ? { rand: deps.rand } : {}) });
  // Keep-alive to the instances: a new TCP connection per request would cost more than the proxy.
  const agent = new http.Agent({ keepAlive: true });
  const exchanges = new WeakMap<IncomingMessage, Exchange>();
  const live = new Set<{ ex: Exchange; res: ServerResponse }>();
  const unreachableAt = new Map<string, number>();
  const clientInfos = new ClientInfoMemo();
  const timeoutMs = config.gateway.upstreamTimeoutMs;

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      log.warn({ err }, `traffic observer failed in ${what}`);
    }
  };

  /** The client's messages are reported once the session id is known (initialize) or the exchange failed. */
  const reportClientMessages = (ex: Exchange) => {
    if (ex.clientMessagesSent || !observer) return;
    ex.clientMessagesSent = true;
    const text = ex.body?.toString('utf8') ?? '';
    const raws = ex.batch ? jsonArrayItems(text) : [text];
    ex.messages.forEach((msg, i) => {
      const raw = raws[i] ?? '';
      safely('message', () => observer.message(ex.ctx, 'client_to_server', msg, 'json', ex.batch ? Buffer.byteLength(raw) : (ex.body?.length ?? 0), raw));
    });
  };

  const reportEnd = (ex: Exchange, res: ServerResponse) => {
    if (ex.ended) return;
    ex.ended = true;
    clearTimeout(ex.timer);
    if (!observer) return;
    // A GET that became a stream is the session's channel, not a request: its length is no latency.
    if (ex.channel && !ex.noResponse && !ex.timedOut && ex.proxyRes && ex.proxyRes.statusCode === 200) return;
    // The client left before the instance answered: neither a success nor the version's failure.
    if (!ex.proxyRes && !ex.noResponse && !ex.timedOut) return;
    const httpStatus = ex.noResponse ? 0 : ex.timedOut && !ex.proxyRes ? res.statusCode : (ex.proxyRes?.statusCode ?? res.statusCode);
    safely('exchangeEnd', () =>
      observer.exchangeEnd(ex.ctx, {
        httpStatus,
        latencyMs: performance.now() - ex.ctx.startedAt,
        timedOut: ex.timedOut,
        rpcErrors: ex.tap?.rpcErrors ?? 0,
        toolErrors: ex.tap?.toolErrors ?? 0,
        ...(ex.tap?.skipped ? { unreported: ex.tap.skipped } : {}),
      }),
    );
  };

  const pendingIds = (ex: Exchange): JsonRpcId[] => requestIds(ex.classified).filter((id) => !ex.tap?.answered.has(id));

  /** No byte from the instance for upstreamTimeoutMs: the client gets JSON-RPC errors, not a hang. */
  const onTimeout = (ex: Exchange, res: ServerResponse) => {
    if (ex.ended || res.writableEnded) return;
    ex.timedOut = true;
    reportClientMessages(ex);
    ex.proxyRes?.unpipe(res);
    ex.proxyRes?.destroy();
    ex.proxyReq?.destroy();
    const message = `Request timed out: ${ex.ctx.service} ${ex.ctx.version} sent nothing for ${timeoutMs} ms`;
    const errors = pendingIds(ex).map((id) => jsonRpcError(REQUEST_TIMEOUT, message, id));
    const report = (transport: 'json' | 'sse') => {
      for (const e of errors) safely('message', () => observer?.message(ex.ctx, 'server_to_client', e as unknown as JsonRpcMessage, transport, Buffer.byteLength(JSON.stringify(e))));
    };
    if (!res.headersSent) {
      report('json');
      const body = errors.length === 0 ? jsonRpcError(REQUEST_TIMEOUT, message) : ex.batch ? errors : errors[0];
      res.statusCode = 504;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    } else if (ex.tap?.transport === 'sse') {
      report('sse');
      for (const e of errors) res.write(`event: message\ndata: ${JSON.stringify(e)}\n\n`);
      res.end();
    } else {
      res.destroy();
    }
  };

  const armTimer = (ex: Exchange, res: ServerResponse) => {
    clearTimeout(ex.timer);
    // A channel's silence is the server having nothing to say; only its first answer is awaited.
    if (ex.method === 'GET' || (ex.channel && ex.proxyRes)) return;
    ex.timer = setTimeout(() => onTimeout(ex, res), timeoutMs);
  };

  const noteUnreachable = (ex: Exchange, err: Error & { code?: string }) => {
    const now = performance.now();
    const last = unreachableAt.get(ex.ctx.instanceId);
    if (last !== undefined && now - last < UNREACHABLE_EVENT_EVERY_MS) return;
    unreachableAt.set(ex.ctx.instanceId, now);
    log.warn({ err, instanceId: ex.ctx.instanceId, target: ex.target }, 'instance unreachable');
    deps.events
      ?.append({
        service: ex.ctx.service,
        version: ex.ctx.version,
        kind: 'gateway.instance_unreachable',
        status: 'failed',
        details: { instanceId: ex.ctx.instanceId, url: ex.target, code: err.code ?? null, message: err.message },
      })
      .catch(() => {});
  };

  const writeHead = (ex: Exchange, proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = proxyRes.statusCode ?? 502;
    for (const [name, value] of Object.entries(proxyRes.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      res.setHeader(name, value);
    }
    res.setHeader('x-mcpship-version', ex.ctx.version);
    // A capped body may differ in length; it goes out chunked.
    if (ex.capper || ex.rewriter) res.removeHeader('content-length');
    for (const [name, value] of Object.entries(corsHeaders(req.headers.origin))) res.setHeader(name, value);
    if (ex.tap?.transport === 'sse') {
      // no-transform keeps compression (middleware or proxies in front) from holding events back;
      // x-accel-buffering does the same for buffering reverse proxies.
      const cacheControl = String(res.getHeader('cache-control') ?? '');
      if (!/no-transform/i.test(cacheControl)) res.setHeader('cache-control', cacheControl ? `${cacheControl}, no-transform` : 'no-cache, no-transform');
      res.setHeader('x-accel-buffering', 'no');
      // The head goes out with the first event when that came with it (one socket write, not two:
      // a separate write of the head was 3 % of the gateway's CPU); else on its own at once, so a
      // client sees its stream open before the server has anything to say.
      setImmediate(flushHead, res);
    }
  };

  const onProxyRes = async (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    const ex = exchanges.get(req);
    if (!ex || ex.timedOut) {
      proxyRes.destroy();
      return;
    }
    ex.proxyRes = proxyRes;
    armTimer(ex, res);
    const status = proxyRes.statusCode ?? 0;
    const ok = status >= 200 && status < 300;
    const returnedId = typeof proxyRes.headers['mcp-session-id'] === 'string' ? proxyRes.headers['mcp-session-id'] : undefined;
    const { service, version, instanceId } = ex.ctx;
    const initId = ex.opensSession ? ex.classified[0]?.id : undefined;
    let negotiated: string | undefined;
    let sessionSaved = false;
    const tap = ResponseTap.for(proxyRes.headers['content-type'], (msg, transport, size, raw) => {
      if (initId !== undefined && msg.id === initId) {
        const answered = (msg.result as { protocolVersion?: unknown } | undefined)?.protocolVersion;
        if (typeof answered === 'string') {
          negotiated = answered;
          ex.ctx.protocolRevision = answered;
          // Came after the session was recorded (an answer longer than the hold): its own write.
          if (sessionSaved && ex.ctx.sessionId) sessions.setProtocolVersion(ex.ctx.sessionId, answered);
        }
      }
      if (observer) safely('message', () => observer.message(ex.ctx, 'server_to_client', msg, transport, size, raw));
    });
    const onChunk = (chunk: Buffer) => {
      armTimer(ex, res);
      if (tap) safely('tap', () => tap.write(chunk));
    };
    let held: Held | undefined;
    if (ex.opensSession && ok) {
      decider.noteSessionMode(service, version, returnedId ? 'stateful' : 'stateless');
      if (returnedId) {
        ex.ctx.sessionId = returnedId;
        if (ex.ctx.clientName !== undefined) clientInfos.remember(returnedId, { clientName: ex.ctx.clientName, ...optional('clientVersion', ex.ctx.clientVersion) });
        // The client's messages go first: the server's are reported as the held answer is read.
        reportClientMessages(ex);
        ex.tap = tap;
        // One write with the negotiated version in it (hold-answer.ts).
        if (tap && initId !== undefined && initId !== null) held = await holdUntilAnswered(proxyRes, tap, initId, onChunk);
        if (held?.failed || res.destroyed || ex.timedOut) {
          if (!ex.timedOut && !res.writableEnded) res.destroy();
          return;
        }
        // Before the client learns the id, so that its next request finds it on any gateway.
        await sessions.open(returnedId, { service, version, instanceId, ...optional('protocolVersion', negotiated) });
        sessionSaved = true;
      }
    }
    const sessionId = ex.ctx.sessionId;
    if (ex.sessionBound && sessionId && (status === 404 || (ex.method === 'DELETE' && ok))) {
      await endSession(sessionId);
    }
    reportClientMessages(ex);
    if (res.destroyed || ex.timedOut) {
      proxyRes.destroy();
      return;
    }
    ex.tap = tap;
    if (tap && ex.ttlCapMs !== undefined && ex.cacheableIds.size > 0) {
      ex.capper = new TtlCapper({ transport: tap.transport, ids: ex.cacheableIds, capMs: ex.ttlCapMs, maxBytes: DEFAULT_TAP_MAX_BYTES });
    }
    ex.rewriter = ex.pin?.rewriter(proxyRes.headers['content-type']);
    writeHead(ex, proxyRes, req, res);
    if (held?.ended) clearTimeout(ex.timer);
    else {
      proxyRes.on('data', onChunk);
      proxyRes.on('end', () => {
        clearTimeout(ex.timer);
        if (tap) safely('tap', () => tap.end());
      });
    }
    // The instance died mid-response: end the client's stream too (an SSE client resumes with Last-Event-ID).
    proxyRes.on('error', () => {
      if (!ex.timedOut && !res.writableEnded) res.destroy();
    });
    // The tap reads what the instance sent (capture keeps the server's own words); the client gets
    // the capped copy, in its pinned version's shapes.
    let out: NodeJS.ReadableStream = held ? release(proxyRes, held) : proxyRes;
    for (const stage of [ex.capper, ex.rewriter]) {
      if (!stage) continue;
      stage.on('error', () => res.destroy());
      out = out.pipe(stage);
    }
    out.pipe(res);
  };

  const onProxyError = (err: Error & { code?: string }, req: IncomingMessage, res: ServerResponse | unknown) => {
    const ex = exchanges.get(req);
    if (!ex || ex.timedOut || ex.ended || !(res instanceof http.ServerResponse)) return;
    if (res.destroyed) return;
    clearTimeout(ex.timer);
    if (ex.proxyRes) {
      // The head was already passed on; nothing can be said in-band any more.
      res.destroy();
      return;
    }
    // An instance closes an idle kept-alive connection on its own schedule; a request written to it
    // in that instant fails before the instance read it. Nothing reached the server, so sending the
    // (buffered) body again on a fresh connection is safe — the retry Node's http docs describe.
    if (ex.proxyReq?.reusedSocket && STALE_SOCKET_CODES.has(err.code ?? '') && ex.staleRetries < MAX_STALE_RETRIES) {
      ex.staleRetries += 1;
      ex.proxyReq = undefined;
      void proxy(req as Request, res as Response, (e?: unknown) => {
        if (e) onProxyError(e as Error & { code?: string }, req, res);
      });
      return;
    }
    noteUnreachable(ex, err);
    if (err.code === 'ECONNREFUSED') {
      decider.noteRefused(ex.ctx.instanceId);
      // Nothing reached the instance, so a request no session ties to it is sent to another one at once.
      if (!ex.sessionBound && ex.refusedBy.size < MAX_REFUSED_RETRIES) {
        ex.refusedBy.add(ex.ctx.instanceId);
        sendElsewhere(ex, req as Request, res as Response, err).catch(() => failUnreached(ex, res as Response, err));
        return;
      }
    }
    failUnreached(ex, res as Response, err);
  };

  /** Decides again, the refusing instances aside (the same version first), and proxies there. */
  const sendElsewhere = async (ex: Exchange, req: Request, res: Response, err: Error & { code?: string }) => {
    const decision = await decider.decide({ ...ex.facts, preferVersion: ex.ctx.version }).catch(() => undefined);
    if (ex.ended || res.destroyed) return;
    // A pinned exchange's body and answer were shaped for its version; elsewhere they would not fit.
    if (decision?.kind !== 'proxy' || ex.refusedBy.has(decision.instance.instanceId) || (ex.pin && decision.version !== ex.ctx.version)) {
      failUnreached(ex, res, err);
      return;
    }
    ex.ctx.version = decision.version;
    ex.ctx.instanceId = decision.instance.instanceId;
    ex.target = decision.instance.url;
    ex.proxyReq = undefined;
    armTimer(ex, res);
    await proxy(req, res, (e?: unknown) => {
      if (e) onProxyError(e as Error & { code?: string }, req, res);
    });
  };

  const failUnreached = (ex: Exchange, res: Response, err: Error & { code?: string }) => {
    ex.noResponse = true;
    reportClientMessages(ex);
    const rpcId = !ex.batch ? (ex.classified[0]?.id ?? null) : null;
    // The instance holding the session is gone, and the session with it: the spec's 404 makes the client start over.
    if (ex.sessionBound && ex.ctx.sessionId && err.code === 'ECONNREFUSED') {
      void endSession(ex.ctx.sessionId).then(() => sendRpcError(res, 404, jsonRpcError(SESSION_NOT_FOUND, 'Session not found: its instance is no longer serving', rpcId)));
      return;
    }
    sendRpcError(res, 502, jsonRpcError(SERVER_ERROR, `Bad gateway: ${ex.ctx.service} ${ex.ctx.version} did not answer (${err.code ?? err.message})`, rpcId));
  };

  const proxy = createProxyMiddleware<Request, Response>({
    router: (req) => exchanges.get(req)!.target,
    changeOrigin: true,
    ignorePath: true,
    selfHandleResponse: true,
    xfwd: true,
    agent,
    on: {
      proxyReq: (proxyReq, req) => {
        const ex = exchanges.get(req);
        if (!ex) return;
        ex.proxyReq = proxyReq;
        if (ex.timedOut || ex.ended) {
          proxyReq.destroy();
          return;
        }
        proxyReq.removeHeader('x-mcpship-version');
        proxyReq.removeHeader('x-mcpship-admin-token');
        proxyReq.removeHeader(PIN_HEADER);
        if (ex.traceparent) proxyReq.setHeader('traceparent', ex.traceparent);
        // Identity bodies only: the tap must read them, and compression holds SSE bytes back.
        proxyReq.setHeader('accept-encoding', 'identity');
        const body = ex.pin?.body ?? ex.body;
        if (body) {
          proxyReq.removeHeader('transfer-encoding');
          proxyReq.removeHeader('content-encoding');
          proxyReq.setHeader('content-length', body.length);
          proxyReq.write(body);
        }
      },
      proxyRes: (proxyRes, req, res) => {
        onProxyRes(proxyRes, req, res).catch((err: unknown) => {
          log.error({ err }, 'gateway response handling failed');
          res.destroy();
        });
      },
      error: (err, req, res) => onProxyError(err as Error & { code?: string }, req, res),
    },
  });

  const stamp: RequestHandler = (_req, res, next) => {
    res.locals.mcpshipStartedAt = performance.now();
    next();
  };

  const methods: RequestHandler = (req, res, next) => {
    if (req.method === 'OPTIONS') {
      res.set(corsHeaders(req.headers.origin, true)).status(204).end();
      return;
    }
    if (METHODS.has(req.method)) return next();
    res.set('Allow', 'GET, POST, DELETE').status(405).json(jsonRpcError(SERVER_ERROR, 'Method not allowed'));
  };

  const rawBody = express.raw({ type: () => true, limit: config.gateway.bodyLimitBytes });
  const readBody: RequestHandler = (req, res, next) => (req.method === 'POST' ? rawBody(req, res, next) : next());

  const handle = async (req: Request, res: Response, next: NextFunction) => {
    const service = String(req.params.service ?? '');
    const method = req.method as 'GET' | 'POST' | 'DELETE';
    for (const [name, value] of Object.entries(corsHeaders(req.headers.origin))) res.setHeader(name, value);
    if (!isServiceName(service)) return sendRpcError(res, 404, jsonRpcError(SERVER_ERROR, `Unknown service: ${service}`));

    let body: Buffer | undefined;
    let messages: JsonRpcMessage[] = [];
    let classified: Classified[] = [];
    let batch = false;
    if (method === 'POST') {
      // An app-level JSON parser mounted before us would leave an object; the bytes are then re-made from it.
      body = Buffer.isBuffer(req.body) ? req.body : req.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(req.body));
      const parsed = parseJsonRpcBody(body);
      if (!parsed.ok) return sendRpcError(res, parsed.httpStatus, parsed.error);
      ({ messages, classified, batch } = parsed);
    }
    const sessionId = header(req, 'mcp-session-id');
    const forcedVersion = header(req, 'x-mcpship-version');
    const protocolVersion = header(req, 'mcp-protocol-version');
    const protocol = protocolFacts(protocolVersion, messages);
    // Choosing a version by hand is an operator's tool: with an admin token configured, it needs the
    // token wherever it would take effect (a stateless request is routed whatever session header it has).
    const routedBySession = sessionId !== undefined && protocol.generation === 'session';
    if (forcedVersion !== undefined && !routedBySession && config.api.adminToken && !tokenMatches(config.api.adminToken, header(req, 'x-mcpship-admin-token'))) {
      return sendRpcError(res, 403, jsonRpcError(SERVER_ERROR, 'Forbidden: X-Mcpship-Version needs X-Mcpship-Admin-Token'));
    }
    const key = clientKey({
      ...optional('clientHeader', header(req, CLIENT_HEADER)),
      ...optional('authorization', header(req, 'authorization')),
      messages,
      ...optional('remoteAddress', req.ip ?? req.socket.remoteAddress),
    });
    if (!key.ok) return sendRpcError(res, 400, jsonRpcError(INVALID_REQUEST, `Invalid Request: ${key.error}`, !batch ? (classified[0]?.id ?? null) : null));
    const facts: RequestFacts = {
      service,
      method,
      ...(sessionId !== undefined ? { sessionId } : {}),
      ...(forcedVersion !== undefined ? { forcedVersion } : {}),
      ...(protocolVersion !== undefined ? { protocolVersion } : {}),
      generation: protocol.generation,
      clientKey: key.key,
      initialize: !batch && classified[0]?.initialize === true,
      batch,
      rpcId: !batch ? (classified[0]?.id ?? null) : null,
    };

    let decision: Decision;
    try {
      decision = await decider.decide(facts);
    } catch (err) {
      log.error({ err, service }, 'routing unavailable');
      return sendRpcError(res, 503, jsonRpcError(SERVER_ERROR, 'Service unavailable: routing data cannot be read', facts.rpcId));
    }
    if (decision.kind === 'reject') {
      if (decision.closeSession) await endSession(decision.closeSession);
      return sendRpcError(res, decision.status, decision.body);
    }
    const info = clientInfos.fromMessages(messages, decision.session?.sessionId);
    const ask = { ...optional('header', header(req, PIN_HEADER)), clientKey: key.key, ...optional('clientName', info?.clientName) };
    const pin = deps.pinning ? await deps.pinning.prepare(service, decision.version, ask, messages, batch, facts.rpcId) : { kind: 'none' as const };
    if (pin.kind === 'reject') return sendRpcError(res, pin.status, pin.body);
    const trace = traceContext(header(req, 'traceparent'));

    const ex: Exchange = {
      ctx: {
        service,
        version: decision.version,
        instanceId: decision.instance.instanceId,
        ...(decision.session ? { sessionId: decision.session.sessionId } : {}),
        methods: classified.flatMap((c) => (c.kind === 'request' && c.method !== undefined ? [c.method] : [])),
        ...optional('protocolRevision', protocol.revision ?? decision.session?.protocolVersion ?? requestedRevision(messages, facts.initialize)),
        generation: protocol.generation,
        clientKey: key.key,
        startedAt: res.locals.mcpshipStartedAt as number,
        traceId: trace.traceId,
        ...info,
        ...(pin.kind === 'pin' ? { versionAsked: pin.versionAsked, transforms: pin.pinned.transformIds } : {}),
      },
      method,
      target: decision.instance.url,
      ...(body ? { body } : {}),
      messages,
      classified,
      batch,
      opensSession: decision.opensSession,
      sessionBound: decision.session !== undefined,
      channel: method === 'GET' || (!batch && classified[0]?.method === 'subscriptions/listen'),
      ...optional('ttlCapMs', decision.ttlCapMs),
      ...(pin.kind === 'pin' ? { pin: pin.pinned } : {}),
      ...(trace.generated ? { traceparent: trace.traceparent } : {}),
      cacheableIds: new Set(requestIds(classified.filter((c) => c.method !== undefined && CACHEABLE_METHODS.has(c.method)))),
      clientMessagesSent: false,
      timedOut: false,
      staleRetries: 0,
      facts,
      refusedBy: new Set(),
      noResponse: false,
      ended: false,
    };
    exchanges.set(req, ex);
    const entry = { ex, res };
    live.add(entry);
    res.once('close', () => {
      live.delete(entry);
      // The client left (or the response is done): nothing upstream is worth keeping open.
      if (!res.writableFinished) {
        ex.proxyReq?.destroy();
        ex.proxyRes?.destroy();
      }
      reportEnd(ex, res);
    });
    armTimer(ex, res);
    await proxy(req, res, next);
  };

  const router = express.Router();
  router.use(stamp, securityGuard(config.api));
  router.all('/:service', methods, readBody, (req, res, next) => {
    handle(req, res, next).catch(next);
  });
  // Body errors (too large, bad encoding) and anything unexpected, as JSON-RPC errors.
  router.use((err: { type?: string; status?: number; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err?.type === 'entity.too.large') {
      return sendRpcError(res, 413, jsonRpcError(INVALID_REQUEST, `Request body larger than ${config.gateway.bodyLimitBytes} bytes`));
    }
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) log.error({ err }, 'gateway request failed');
    sendRpcError(res, status, jsonRpcError(status === 500 ? INTERNAL_ERROR : SERVER_ERROR, status === 500 ? 'Internal error' : String(err?.message ?? 'Bad request')));
  });

  return {
    router,
    cache,
    sessions,
    close: async () => {
      cache.close();
      for (const { ex, res } of live) {
        clearTimeout(ex.timer);
        ex.proxyReq?.destroy();
        ex.proxyRes?.destroy();
        if (!res.writableEnded) res.destroy();
      }
      live.clear();
      agent.destroy();
    },
  };
}
