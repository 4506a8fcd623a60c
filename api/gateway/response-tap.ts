/**
 * Reads JSON-RPC messages out of an upstream response while the proxy streams the same bytes to
 * the client: the tap gets copies of the chunks, so parsing never holds a byte back. SSE events
 * are reported one by one as they complete; a JSON body when it has all arrived.
 */
import { countMessageErrors } from '../../core/health.ts';
import type { JsonRpcId, JsonRpcMessage } from '../../core/routing.ts';
import { jsonArrayItems } from './json-text.ts';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** The default bound on one SSE event (and on one JSON body) the tap parses. */
export const DEFAULT_TAP_MAX_BYTES = 16 * 1024 * 1024;

/**
 * An incremental text/event-stream parser (the WHATWG rules: any line ending, `data:` lines joined).
 * What it holds is bounded: an event (or a line) growing beyond maxEventBytes is skipped up to its
 * end and counted in `skipped`, so a server that never ends a line cannot grow the gateway's memory.
 * The bound counts UTF-16 units, which is the byte count for the ASCII of JSON and never above it.
 */
export class SseParser {
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private data: string[] = [];
  private dataLength = 0;
  private event = '';
  private id: string | undefined;
  /** Inside an over-long event: lines are dropped until its blank line. */
  private skipping = false;
  /** Events dropped for being longer than maxEventBytes. */
  skipped = 0;

  constructor(private readonly maxEventBytes = DEFAULT_TAP_MAX_BYTES) {}

  push(chunk: Uint8Array): SseEvent[] {
    return this.consume(this.decoder.decode(chunk, { stream: true }), false);
  }

  /** The stream ended; an event without its blank line is dropped, as a browser would. */
  end(): SseEvent[] {
    return this.consume(this.decoder.decode(), true);
  }

  private consume(text: string, final: boolean): SseEvent[] {
    const out: SseEvent[] = [];
    const buf = this.buffer + text;
    let pos = 0;
    // The held text has no line end (but perhaps a last CR): no need to search it again.
    let from = Math.max(0, this.buffer.length - 1);
    for (;;) {
      const cr = buf.indexOf('\r', from);
      const lf = buf.indexOf('\n', from);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (buf[end] === '\r' && end === buf.length - 1 && !final) break;
      const line = buf.slice(pos, end);
      pos = end + (buf[end] === '\r' && buf[end + 1] === '\n' ? 2 : 1);
      from = pos;
      this.line(line, out);
    }
    this.buffer = buf.slice(pos);
    if (this.buffer.length + this.dataLength > this.maxEventBytes) this.skip();
    // Skipped text is not kept. What stands in for an unfinished line is a comment (':'), never
    // blank, and keeps a trailing CR that may pair with the next chunk's LF.
    if (this.skipping && this.buffer !== '' && this.buffer !== '\r') this.buffer = this.buffer.endsWith('\r') ? ':\r' : ':';
    if (final) {
      this.buffer = '';
      this.resetEvent();
      this.skipping = false;
    }
    return out;
  }

  private skip(): void {
    if (!this.skipping) this.skipped++;
    this.skipping = true;
    this.resetEvent();
  }

  private resetEvent(): void {
    this.data = [];
    this.dataLength = 0;
    this.event = '';
  }

  private line(line: string, out: SseEvent[]): void {
    if (this.skipping) {
      if (line === '') this.skipping = false;
      return;
    }
    if (line === '') {
      if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
      this.resetEvent();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxEventBytes) this.skip();
    }
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

export type TapTransport = 'json' | 'sse';
/** raw: the message's exact JSON text (one item's, in a batch). */
export type OnTappedMessage = (msg: JsonRpcMessage, transport: TapTransport, size: number, raw: string) => void;

/**
 * Follows one response: reports each JSON-RPC message and keeps the health counts and the ids
 * answered so far (what a timeout still owes the client).
 */
export class ResponseTap {
  rpcErrors = 0;
  toolErrors = 0;
  readonly answered = new Set<JsonRpcId>();
  private readonly sse?: SseParser;
  private chunks: Buffer[] = [];
  private bytes = 0;

  private constructor(
    readonly transport: TapTransport,
    private readonly onMessage: OnTappedMessage,
    private readonly maxMessageBytes: number,
  ) {
    if (transport === 'sse') this.sse = new SseParser(maxMessageBytes);
  }

  /** Messages not parsed (so not reported) because they were larger than the bound. */
  get skipped(): number {
    return (this.sse?.skipped ?? 0) + (this.transport === 'json' && this.bytes > this.maxMessageBytes ? 1 : 0);
  }

  /** A tap for the response's content type, or undefined for bodies that carry no JSON-RPC. */
  static for(contentType: string | undefined, onMessage: OnTappedMessage, maxMessageBytes = DEFAULT_TAP_MAX_BYTES): ResponseTap | undefined {
    const essence = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (essence === 'text/event-stream') return new ResponseTap('sse', onMessage, maxMessageBytes);
    if (essence === 'application/json' || essence.endsWith('+json')) return new ResponseTap('json', onMessage, maxMessageBytes);
    return undefined;
  }

  write(chunk: Buffer): void {
    if (this.sse) {
      for (const event of this.sse.push(chunk)) this.event(event);
      return;
    }
    this.bytes += chunk.length;
    // Beyond the cap the body is not parsed (and not reported); the client still gets all of it.
    if (this.bytes <= this.maxMessageBytes) this.chunks.push(chunk);
    else this.chunks = [];
  }

  end(): void {
    if (this.sse) {
      for (const event of this.sse.end()) this.event(event);
      return;
    }
    if (this.bytes === 0 || this.bytes > this.maxMessageBytes) return;
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    this.payload(text, this.bytes);
  }

  private event(event: SseEvent): void {
    if (event.event !== 'message') return;
    this.payload(event.data, Buffer.byteLength(event.data));
  }

  private payload(text: string, size: number): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return;
    }
    const batch = Array.isArray(value);
    const raws = batch ? jsonArrayItems(text) : [text];
    for (const [index, item] of (batch ? (value as unknown[]) : [value]).entries()) {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) continue;
      const msg = item as JsonRpcMessage;
      const counts = countMessageErrors(msg);
      this.rpcErrors += counts.rpcErrors;
      this.toolErrors += counts.toolErrors;
      if (!('method' in msg) && (typeof msg.id === 'string' || typeof msg.id === 'number')) this.answered.add(msg.id);
      const raw = raws[index]!;
      this.onMessage(msg, this.transport, batch ? Buffer.byteLength(raw) : size, raw);
    }
  }
}
