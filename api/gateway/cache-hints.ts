/**
 * Cache hints during a rollout. 2026-07-28 list and read results carry `ttlMs` (SEP-2549): how long
 * a client (or, for `public`, a shared cache) may keep them. While a service has more than one
 * routable version, a client that kept a tool list from one version could call tools on another
 * once it moves, so the gateway caps `ttlMs` at the rollout's step interval: no result outlives the
 * step that produced it. Nothing else in the message changes, and a message that needs no cap
 * passes byte for byte. SSE responses are rewritten event by event, so streaming is kept: bytes
 * that are not an event's `data` lines go out as soon as their line ends.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { JsonRpcId, JsonRpcMessage } from '../../core/routing.ts';

/** The operations whose results are cacheable in 2026-07-28. */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/**
 * The message with `result.ttlMs` lowered to capMs, or undefined when it needs no change (not a
 * result, no numeric ttlMs, already at most capMs).
 */
export function capTtl(msg: unknown, capMs: number): JsonRpcMessage | undefined {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return undefined;
  const result = (msg as JsonRpcMessage).result;
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return undefined;
  const ttl = (result as Record<string, unknown>).ttlMs;
  if (typeof ttl !== 'number' || !(ttl > capMs)) return undefined;
  return { ...(msg as JsonRpcMessage), result: { ...(result as Record<string, unknown>), ttlMs: capMs } };
}

/**
 * The JSON text with the answers to `ids` capped, or undefined when nothing changed (then the
 * original bytes should be sent). Handles a single message and a batch of responses.
 */
export function capJsonText(text: string, ids: ReadonlySet<JsonRpcId>, capMs: number): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const answers = (m: unknown) => typeof m === 'object' && m !== null && ids.has((m as JsonRpcMessage).id as JsonRpcId);
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((m) => {
      const capped = answers(m) ? capTtl(m, capMs) : undefined;
      if (capped) changed = true;
      return capped ?? m;
    });
    return changed ? JSON.stringify(out) : undefined;
  }
  const capped = answers(value) ? capTtl(value, capMs) : undefined;
  return capped ? JSON.stringify(capped) : undefined;
}

export interface TtlCapOptions {
  transport: 'json' | 'sse';
  /** The ids of the exchange's requests for cacheable operations. */
  ids: ReadonlySet<JsonRpcId>;
  capMs: number;
  /** A JSON body, or an SSE event's data, larger than this passes unchanged (and unbuffered beyond it). */
  maxBytes: number;
}

const LF = 0x0a;
const CR = 0x0d;

/** The response body with ttlMs capped, as a stream between the instance and the client. */
export class TtlCapper extends Transform {
  private readonly opts: TtlCapOptions;
  // JSON: the body so far, until it is complete or too large.
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private passThrough = false;
  // SSE: the unfinished line, the current event's data lines, and whether that event is a message.
  private partial: Buffer = Buffer.alloc(0);
  private held: Buffer[] = [];
  private heldBytes = 0;
  private overflow = false;
  private messageEvent = true;
  private afterCR = false;
  /** The last complete line went into `held`. */
  private lastHeld = false;

  constructor(opts: TtlCapOptions) {
    super();
    this.opts = opts;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.opts.transport === 'json') this.json(chunk);
    else this.sse(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.opts.transport === 'json') {
      if (!this.passThrough) {
        const original = Buffer.concat(this.body);
        const capped = capJsonText(original.toString('utf8'), this.opts.ids, this.opts.capMs);
        this.push(capped === undefined ? original : Buffer.from(capped));
      }
    } else {
      // An event cut off by the end of the stream goes out as it came; a client drops it anyway.
      for (const line of this.held) this.push(line);
      if (this.partial.length) this.push(this.partial);
    }
    this.body = [];
    this.held = [];
    done();
  }

  private json(chunk: Buffer): void {
    if (this.passThrough) {
      this.push(chunk);
      return;
    }
    this.body.push(chunk);
    this.bodyBytes += chunk.length;
    if (this.bodyBytes > this.opts.maxBytes) {
      this.passThrough = true;
      this.push(Buffer.concat(this.body));
      this.body = [];
    }
  }

  private sse(chunk: Buffer): void {
    let start = 0;
    // The LF of a CRLF split across chunks: part of the line already ended, not a blank line.
    if (this.afterCR && chunk[0] === LF) {
      // It follows its line: into the held data if that line was held, else straight out.
      const last = this.held.length - 1;
      if (this.lastHeld && last >= 0) {
        this.held[last] = Buffer.concat([this.held[last]!, chunk.subarray(0, 1)]);
        this.heldBytes++;
      } else this.push(chunk.subarray(0, 1));
      start = 1;
    }
    this.afterCR = false;
    for (let i = start; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== LF && byte !== CR) continue;
      let end = i + 1;
      if (byte === CR) {
        if (i + 1 < chunk.length) {
          if (chunk[i + 1] === LF) end = i + 2;
        } else this.afterCR = true;
      }
      const piece = chunk.subarray(start, end);
      const line = this.partial.length ? Buffer.concat([this.partial, piece]) : piece;
      this.partial = Buffer.alloc(0);
      this.line(line, line.length - (end - i));
      start = end;
      i = end - 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.partial = this.partial.length ? Buffer.concat([this.partial, rest]) : Buffer.from(rest);
      // A line that never ends within the bound is not held: it can only be an over-long data line.
      if (this.partial.length + this.heldBytes > this.opts.maxBytes) {
        this.release();
        this.push(this.partial);
        this.partial = Buffer.alloc(0);
        this.overflow = true;
      }
    }
  }

  /** One complete line, with its terminator; `length` is its length without the terminator. */
  private line(line: Buffer, length: number): void {
    this.lastHeld = false;
    if (length === 0) {
      this.endEvent();
      this.push(line);
      return;
    }
    const field = fieldName(line, length);
    if (field === 'event') this.messageEvent = fieldValue(line, length) === 'message';
    if (field !== 'data' || this.overflow) {
      this.push(line);
      return;
    }
    this.held.push(Buffer.from(line));
    this.heldBytes += line.length;
    this.lastHeld = true;
    if (this.heldBytes > this.opts.maxBytes) {
      this.release();
      this.overflow = true;
    }
  }

  private endEvent(): void {
    if (this.held.length && this.messageEvent) {
      const data = this.held.map((l) => fieldValue(l, lineLength(l))).join('\n');
      const capped = capJsonText(data, this.opts.ids, this.opts.capMs);
      if (capped !== undefined) {
        this.held = [];
        this.heldBytes = 0;
        this.push(`data: ${capped}\n`);
      }
    }
    this.release();
    this.overflow = false;
    this.messageEvent = true;
  }

  private release(): void {
    for (const l of this.held) this.push(l);
    this.held = [];
    this.heldBytes = 0;
  }
}

function lineLength(line: Buffer): number {
  let n = line.length;
  while (n > 0 && (line[n - 1] === LF || line[n - 1] === CR)) n--;
  return n;
}

function fieldName(line: Buffer, length: number): string {
  const colon = line.indexOf(0x3a);
  return line.toString('utf8', 0, colon === -1 || colon > length ? length : colon);
}

function fieldValue(line: Buffer, length: number): string {
  const colon = line.indexOf(0x3a);
  if (colon === -1 || colon > length) return '';
  const value = line.toString('utf8', colon + 1, length);
  return value.startsWith(' ') ? value.slice(1) : value;
}
