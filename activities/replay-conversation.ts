/**
 * One replayed conversation with one instance over Streamable HTTP: the captured requests are sent
 * again with fresh JSON-RPC ids and progress tokens, in the instance's own session (session
 * revisions) or with the stateless revision's headers; server→client requests arriving on a
 * response stream (sampling, elicitation) are answered with the client's captured answers. Raw
 * JSON-RPC rather than an SDK client: the messages must go out as captured, whatever their shape.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';

const PROTOCOL_META = 'io.modelcontextprotocol/protocolVersion';
/** The revision sent on a session's requests when its initialize did not say (the HTTP default). */
const DEFAULT_REVISION = '2025-03-26';

export interface ConversationOptions {
  url: string;
  stateful: boolean;
  /** The captured client's answer to the next server→client request of a method. */
  clientAnswer: (method: string) => Record<string, unknown> | undefined;
  timeoutMs: number;
  signal?: AbortSignal;
}

type Message = Record<string, unknown>;

const isObject = (v: unknown): v is Message => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What a stateless request is about, for the `Mcp-Name` header. */
function nameOf(message: Message): string | undefined {
  const params = isObject(message.params) ? message.params : {};
  const name = params.name ?? params.uri;
  return typeof name === 'string' ? name : undefined;
}

export class Conversation {
  private sessionId: string | undefined;
  private revision: string | undefined;
  private seq = 0;
  /** The last multi-round (2026-07-28 InputRequiredResult) state this instance handed out. */
  private requestState: unknown;
  private readonly listening = new AbortController();

  constructor(private readonly options: ConversationOptions) {}

  /**
   * Sends one captured request (or notification) and returns the instance's answer to it, id
   * restored to the captured one; undefined for a notification.
   */
  async send(captured: Message): Promise<Message | undefined> {
    const message = structuredClone(captured);
    const isRequest = 'id' in captured && typeof captured.method === 'string';
    const n = ++this.seq;
    if (isRequest) message.id = `replay-${n}`;
    const params = isObject(message.params) ? message.params : undefined;
    const meta = params && isObject(params._meta) ? params._meta : undefined;
    if (meta && 'progressToken' in meta) meta.progressToken = `replay-progress-${n}`;
    if (params && 'requestState' in params && this.requestState !== undefined) params.requestState = this.requestState;

    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    const revision = typeof meta?.[PROTOCOL_META] === 'string' ? (meta[PROTOCOL_META] as string) : this.revision;
    if (revision) headers['mcp-protocol-version'] = revision;
    else if (this.options.stateful && captured.method !== 'initialize') headers['mcp-protocol-version'] = DEFAULT_REVISION;
    if (!this.options.stateful && typeof captured.method === 'string') {
      headers['mcp-method'] = captured.method;
      const name = nameOf(captured);
      if (name !== undefined) headers['mcp-name'] = name;
    }

    const signal = this.options.signal ? AbortSignal.any([this.options.signal, AbortSignal.timeout(this.options.timeoutMs)]) : AbortSignal.timeout(this.options.timeoutMs);
    const res = await fetch(this.options.url, { method: 'POST', headers, body: JSON.stringify(message), signal });
    if (!isRequest) {
      await res.body?.cancel();
      return undefined;
    }
    const answer = await this.answerOf(res, message.id as string, signal);
    if (captured.method === 'initialize') {
      this.sessionId = res.headers.get('mcp-session-id') ?? undefined;
      const negotiated = isObject(answer?.result) ? answer.result.protocolVersion : undefined;
      if (typeof negotiated === 'string') this.revision = negotiated;
      if (this.sessionId) this.listen();
    }
    if (!answer) return undefined;
    const result = isObject(answer.result) ? answer.result : undefined;
    if (result && 'requestState' in result) this.requestState = result.requestState;
    return { ...answer, id: captured.id };
  }

  /** JSON-RPC messages of an SSE body, as they come. */
  private async *messagesOf(body: NonNullable<Response['body']>): AsyncGenerator<Message> {
    const reader = body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        let msg: unknown;
        try {
          msg = JSON.parse(value.data);
        } catch {
          continue;
        }
        if (isObject(msg)) yield msg;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  private async answerOf(res: Response, id: string, signal: AbortSignal): Promise<Message | undefined> {
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('text/event-stream') && res.body) {
      for await (const msg of this.messagesOf(res.body)) {
        if (typeof msg.method === 'string' && 'id' in msg) await this.answerServer(msg, signal);
        else if (msg.id === id && ('result' in msg || 'error' in msg)) return msg;
      }
      return undefined;
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON-RPC at all (an HTTP error page): the client would see a failed request.
      return { jsonrpc: '2.0', id, error: { code: -32000, message: `HTTP ${res.status}: ${text.slice(0, 200)}` } };
    }
    const found = (Array.isArray(body) ? body : [body]).find((m) => isObject(m) && m.id === id);
    if (isObject(found)) return found;
    if (isObject(body) && 'error' in body) return { ...body, id };
    return { jsonrpc: '2.0', id, error: { code: -32000, message: `HTTP ${res.status} without an answer to the request` } };
  }

  /** A server→client request during a call, answered as the captured client did. */
  private async answerServer(request: Message, signal: AbortSignal): Promise<void> {
    const captured = this.options.clientAnswer(request.method as string);
    const reply = captured
      ? { ...captured, id: request.id }
      : { jsonrpc: '2.0', id: request.id, error: { code: -32603, message: `replay: the capture holds no client answer to ${String(request.method)}` } };
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    if (this.revision) headers['mcp-protocol-version'] = this.revision;
    const res = await fetch(this.options.url, { method: 'POST', headers, body: JSON.stringify(reply), signal });
    await res.body?.cancel();
  }

  /**
   * The session's GET stream: a server that sends its requests there rather than on the call's
   * own stream (the SDK's `server.createMessage` without a related request does) is answered too.
   */
  private listen(): void {
    const headers: Record<string, string> = { accept: 'text/event-stream', 'mcp-session-id': this.sessionId! };
    if (this.revision) headers['mcp-protocol-version'] = this.revision;
    const signal = this.options.signal ? AbortSignal.any([this.options.signal, this.listening.signal]) : this.listening.signal;
    const run = async () => {
      const res = await fetch(this.options.url, { headers, signal });
      // 405: the server offers no GET stream, which is allowed.
      if (!res.ok || !res.body) return void (await res.body?.cancel());
      for await (const msg of this.messagesOf(res.body)) {
        if (typeof msg.method === 'string' && 'id' in msg) await this.answerServer(msg, signal);
      }
    };
    void run().catch(() => {});
  }

  /** Ends the instance's session (a stdio bridge ends its process with it). */
  async close(): Promise<void> {
    this.listening.abort();
    if (!this.sessionId) return;
    const headers: Record<string, string> = { 'mcp-session-id': this.sessionId };
    if (this.revision) headers['mcp-protocol-version'] = this.revision;
    await fetch(this.options.url, { method: 'DELETE', headers, signal: AbortSignal.timeout(5_000) })
      .then((res) => res.body?.cancel())
      .catch(() => {});
    this.sessionId = undefined;
  }
}
