/**
 * Version pinning (issue 9): a client built against an older version says so with
 * X-Mcpship-Service-Version; the gateway still sends it to the version the routing chose, through
 * the transform chain between the two (compat/): its requests migrated forward, and the answers,
 * tool lists and notifications (JSON or SSE) migrated back. The transforms are loaded from the
 * serving version's own folder (each version carries every transform up to itself). Every
 * transform run is counted (compat/transform-counters.ts). A client that cannot send the header is
 * pinned in the configuration instead (gateway.pins): by its client key or its clientInfo name.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../../core/mongo.ts';
import { INTERNAL_ERROR, INVALID_REQUEST, jsonRpcError, type JsonRpcErrorBody, type JsonRpcMessage } from '../../core/routing.ts';
import { backwardNotification, backwardResponse, ChainError, forwardRequest, TransformError, type ForwardedRequest, type StepObserver } from '../../compat/chain.ts';
import { loadTransforms } from '../../compat/load.ts';
import { pinWithoutTransforms, resolvePin } from '../../compat/pin-chains.ts';
import type { LoadedTransform, TransformChain } from '../../compat/types.ts';
import { TransformCounters } from '../../compat/transform-counters.ts';
import { SseParser } from './response-tap.ts';

export const PIN_HEADER = 'x-mcpship-service-version';
/** A failed load is tried again after this long (the version's folder may be fixed or restored). */
const RETRY_LOAD_MS = 10_000;

export type PinOutcome =
  | { kind: 'none' }
  | { kind: 'reject'; status: number; body: JsonRpcErrorBody }
  | { kind: 'pin'; versionAsked: string; pinned: PinnedExchange };

function idKey(id: unknown): string {
  return typeof id === 'string' ? `s:${id}` : `n:${String(id)}`;
}

/** One pinned exchange: the body the server gets, and what turns its answer back into the client's shapes. */
export class PinnedExchange {
  private readonly requests = new Map<string, ForwardedRequest>();

  constructor(
    readonly chain: TransformChain,
    private readonly observe: StepObserver,
    /** The body to send upstream (the client's, forwarded), or undefined to send the client's own. */
    public body: Buffer | undefined = undefined,
  ) {}

  get transformIds(): string[] {
    return this.chain.steps.map((s) => s.id);
  }

  /** Migrates the client's messages forward; a transform that throws answers the exchange with an error instead. */
  forward(messages: readonly JsonRpcMessage[], batch: boolean): JsonRpcErrorBody | undefined {
    if (this.chain.steps.length === 0 || messages.length === 0) return undefined;
    const out: JsonRpcMessage[] = [];
    for (const msg of messages) {
      if (typeof msg.method !== 'string' || !('id' in msg)) {
        out.push(msg);
        continue;
      }
      try {
        const fwd = forwardRequest(this.chain, msg, this.observe);
        this.requests.set(idKey(msg.id), fwd);
        out.push(fwd.message);
      } catch (err) {
        if (!(err instanceof TransformError)) throw err;
        return jsonRpcError(INTERNAL_ERROR, `Version pin ${this.chain.from}: ${err.message}`, msg.id as string | number);
      }
    }
    this.body = Buffer.from(JSON.stringify(batch ? out : out[0]));
    return undefined;
  }

  /** A server message in the serving version's shapes → the client's; a failed transform becomes an error for that request. */
  backward(msg: JsonRpcMessage): JsonRpcMessage {
    const isResponse = 'id' in msg && ('result' in msg || 'error' in msg) && !('method' in msg);
    try {
      if (isResponse) return backwardResponse(this.chain, msg, this.requests.get(idKey(msg.id)) ?? {}, this.observe).message;
      if (typeof msg.method === 'string' && !('id' in msg)) return backwardNotification(this.chain, msg, this.observe).message;
      return msg;
    } catch (err) {
      if (!(err instanceof TransformError)) throw err;
      if (!isResponse) throw err;
      return jsonRpcError(INTERNAL_ERROR, `Version pin ${this.chain.from}: ${err.message}`, msg.id as string | number) as unknown as JsonRpcMessage;
    }
  }

  /** A stream that rewrites the upstream response for the client, or undefined when nothing needs it. */
  rewriter(contentType: string | undefined): Transform | undefined {
    if (this.chain.steps.length === 0) return undefined;
    const type = (contentType ?? '').toLowerCase();
    if (type.startsWith('application/json')) return new JsonRewriter(this);
    if (type.startsWith('text/event-stream')) return new SseRewriter(this);
    return undefined;
  }
}

class JsonRewriter extends Transform {
  private chunks: Buffer[] = [];
  constructor(private readonly pin: PinnedExchange) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.chunks.push(chunk);
    done();
  }
  override _flush(done: TransformCallback): void {
    const text = Buffer.concat(this.chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // Not JSON-RPC (an HTTP error page): the client gets it as it came.
      done(null, text);
      return;
    }
    const one = (m: unknown) => (m !== null && typeof m === 'object' && !Array.isArray(m) ? this.pin.backward(m as JsonRpcMessage) : m);
    done(null, JSON.stringify(Array.isArray(parsed) ? parsed.map(one) : one(parsed)));
  }
}

class SseRewriter extends Transform {
  private readonly parser = new SseParser();
  constructor(private readonly pin: PinnedExchange) {
    super();
  }
  private rewrite(events: ReturnType<SseParser['push']>): string {
    let out = '';
    for (const e of events) {
      let data = e.data;
      if (e.event === 'message' || e.event === '') {
        try {
          const msg = JSON.parse(data) as unknown;
          if (msg !== null && typeof msg === 'object' && !Array.isArray(msg)) data = JSON.stringify(this.pin.backward(msg as JsonRpcMessage));
        } catch {
          // Not a JSON-RPC message (a priming event): passed as it came.
        }
      }
      if (e.id !== undefined) out += `id: ${e.id}\n`;
      if (e.event !== '') out += `event: ${e.event}\n`;
      for (const line of data.split('\n')) out += `data: ${line}\n`;
      out += '\n';
    }
    return out;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = this.rewrite(this.parser.push(chunk));
    done(null, out === '' ? undefined : out);
  }
  override _flush(done: TransformCallback): void {
    const out = this.rewrite(this.parser.end());
    done(null, out === '' ? undefined : out);
  }
}

export interface PinningOptions {
  store: Store;
  log: Logger;
  /** The gateway whose counters these are (one writer per counters document). */
  gatewayId: string;
  /** Configured pins (core/config.ts gateway.pins). */
  pins?: Config['gateway']['pins'];
}

/** Who is asking, as far as pins go. */
export interface PinAsk {
  /** X-Mcpship-Service-Version, when sent. */
  header?: string;
  /** The gateway's client key (api/gateway/client-key.ts). */
  clientKey: string;
  /** clientInfo name (initialize, remembered per session, or a stateless request's `_meta`). */
  clientName?: string;
}

/** Resolves pins to chains, loads and caches each serving version's transforms, counts their runs. */
export class Pinning {
  readonly counters: TransformCounters;
  private readonly loaded = new Map<string, { at: number; transforms: Promise<LoadedTransform[]> }>();

  constructor(private readonly opts: PinningOptions) {
    this.counters = new TransformCounters({ collection: opts.store.transformMetrics, gatewayId: opts.gatewayId, log: opts.log });
  }

  private async transformsOf(service: string, version: string): Promise<LoadedTransform[]> {
    const key = `${service}\n${version}`;
    const cached = this.loaded.get(key);
    if (cached && (Date.now() - cached.at < RETRY_LOAD_MS || !(await cached.transforms.then(() => false, () => true)))) return cached.transforms;
    const transforms = (async () => {
      const doc = await this.opts.store.versions.findOne({ service, version }, { projection: { stagedDir: 1, archiveDir: 1 } });
      const dir = doc?.stagedDir ?? doc?.archiveDir;
      if (!dir) throw new ChainError(`${service} ${version} has no staged folder to load transforms from`);
      return loadTransforms(dir);
    })();
    this.loaded.set(key, { at: Date.now(), transforms });
    return transforms;
  }

  /**
   * The version a client asks for: its header, else a configured pin for its client key, else for
   * its clientInfo name. The header wins: a client that says what it speaks knows best.
   */
  askedVersion(service: string, ask: PinAsk): { version: string; source: string } | undefined {
    if (ask.header !== undefined) return { version: ask.header, source: PIN_HEADER };
    const pins = this.opts.pins?.[service];
    if (!pins) return undefined;
    for (const client of [ask.clientKey, ...(ask.clientName !== undefined ? [`name:${ask.clientName}`] : [])]) {
      const version = pins[client];
      if (version !== undefined) return { version, source: `the configured pin gateway.pins.${service}["${client}"]` };
    }
    return undefined;
  }

  /** What a request from `ask` routed to `served` needs; nothing when the client asks for no version. */
  async prepare(service: string, served: string, ask: PinAsk, messages: readonly JsonRpcMessage[], batch: boolean, rpcId: string | number | null): Promise<PinOutcome> {
    const pin = this.askedVersion(service, ask);
    if (pin === undefined) return { kind: 'none' };
    const asked = pin.version;
    const refuse = (status: number, message: string): PinOutcome => ({ kind: 'reject', status, body: jsonRpcError(status === 400 ? INVALID_REQUEST : INTERNAL_ERROR, message, rpcId) });
    // Only a client older than `served` needs the serving version's transforms loaded.
    const first = pinWithoutTransforms(service, asked, served);
    const resolved = first !== 'older' ? first : resolvePin(service, asked, served, await this.transformsOf(service, served).catch((err: Error) => err));
    if ('refused' in resolved) {
      const why = resolved.refused;
      if (why.case === 'invalid') return refuse(400, `Invalid Request: ${PIN_HEADER} must be an x.y.z version, got "${asked.slice(0, 40)}"`);
      if (why.case === 'newer') return refuse(400, `Invalid Request: ${service} serves ${served}, older than ${asked} pinned by ${pin.source}; ${why.message}`);
      this.opts.log.warn({ service, asked, served, source: pin.source, err: why.message }, 'version pin cannot be served');
      return refuse(why.chainError ? 400 : 500, `${why.chainError ? 'Invalid Request: ' : ''}version pin ${asked} (${pin.source}) cannot be served by ${served}: ${why.message}`);
    }
    const pinned = new PinnedExchange(resolved.chain, this.counters.observer(service));
    const failed = pinned.forward(messages, batch);
    if (failed) return { kind: 'reject', status: 500, body: failed };
    return { kind: 'pin', versionAsked: asked, pinned };
  }

  close(): Promise<void> {
    return this.counters.close();
  }
}
