/**
 * Shaping one JSON-RPC message into a MessageDoc (pure apart from the clock): the exact text, cut
 * to the payload cap and redacted, with the queried fields extracted beside it.
 */
import { randomUUID } from 'node:crypto';
import type { MessageDirection, MessageDoc } from '../../../core/documents.ts';
import type { ExchangeContext, JsonRpcMessage } from '../traffic.ts';
import { redact, type RedactPaths } from './redact.ts';

/** The `_meta` key that carries the protocol revision on 2026-07-28 requests. */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';

export function messageKind(msg: JsonRpcMessage): MessageDoc['kind'] {
  if (typeof msg.method === 'string') return 'id' in msg ? 'request' : 'notification';
  if (msg.error !== undefined && msg.error !== null) return 'error';
  return 'response';
}

/** The longest prefix of `text` that fits in maxBytes of UTF-8 without splitting a character. */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text; // no UTF-16 unit takes more than 3 bytes
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text; // counts without copying
  const bytes = Buffer.from(text, 'utf8');
  let end = Math.max(0, maxBytes);
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // bytes[end] continues a character begun before the cut
  return bytes.subarray(0, end).toString('utf8');
}

/** The text to store: the message's own, or its first maxBytes (marked truncated). */
export function capText(text: string, maxBytes: number): { raw: string; truncated: boolean } {
  const raw = utf8Prefix(text, maxBytes);
  return { raw, truncated: raw.length !== text.length };
}

export interface ShapeInput {
  ctx: ExchangeContext;
  direction: MessageDirection;
  msg: JsonRpcMessage;
  transport: 'json' | 'sse';
  /** Bytes on the wire, when the gateway knows them. */
  size: number;
  /** The message's JSON text as it passed; without it the parsed message is serialised. */
  raw?: string;
  at: Date;
  latencyMs?: number;
  /** For a response: the tool its request called. */
  toolName?: string;
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** `params.name` of a tools/call request. */
export function toolNameOf(msg: JsonRpcMessage): string | undefined {
  if (msg.method !== 'tools/call') return undefined;
  const name = record(msg.params)?.name;
  return typeof name === 'string' ? name : undefined;
}

/** The exchange's revision (the gateway knows it from the request or the session), else the message's own `_meta`. */
function protocolRevisionOf(ctx: ExchangeContext, msg: JsonRpcMessage): string | undefined {
  if (typeof ctx.protocolRevision === 'string') return ctx.protocolRevision;
  const meta = record(record(msg.params)?._meta)?.[META_PROTOCOL_VERSION];
  return typeof meta === 'string' ? meta : undefined;
}

/**
 * The document for one message. Throws only when the message has no exact text and cannot be
 * serialised (nested too deep for JSON.stringify), or must be redacted and then cannot be.
 */
export function shapeMessage(input: ShapeInput, opts: { redact: RedactPaths; maxPayloadBytes: number }): MessageDoc {
  const { ctx, direction, msg } = input;
  const kind = messageKind(msg);
  const redactedMsg = redact(msg, opts.redact);
  const redacted = redactedMsg !== msg;
  const text = redacted || input.raw === undefined ? JSON.stringify(redactedMsg) : input.raw;
  const { raw, truncated } = capText(text, opts.maxPayloadBytes);
  const rpcId = msg.id;
  const protocolRevision = protocolRevisionOf(ctx, msg);
  const toolName = kind === 'request' ? toolNameOf(msg) : input.toolName;
  const wireSize = Number.isFinite(input.size) && input.size >= 0 ? input.size : Buffer.byteLength(text);
  return {
    messageId: randomUUID(),
    service: ctx.service,
    version: ctx.version,
    ...(ctx.sessionId ? { sessionId: ctx.sessionId } : {}),
    ...(typeof ctx.clientKey === 'string' ? { clientKey: ctx.clientKey } : {}),
    ...(protocolRevision !== undefined ? { protocolRevision } : {}),
    direction,
    kind,
    ...(typeof msg.method === 'string' ? { method: msg.method } : {}),
    ...(typeof rpcId === 'string' || typeof rpcId === 'number' || rpcId === null ? { rpcId } : {}),
    ...(toolName !== undefined ? { toolName } : {}),
    ...(kind === 'response' ? { isError: record(msg.result)?.isError === true } : {}),
    raw,
    truncated,
    redacted,
    size: wireSize,
    at: input.at,
    ...(input.latencyMs !== undefined ? { latencyMs: input.latencyMs } : {}),
    transport: input.transport,
    ...(ctx.versionAsked !== undefined ? { versionAsked: ctx.versionAsked } : {}),
    ...(ctx.traceId !== undefined ? { traceId: ctx.traceId } : {}),
    ...(ctx.clientName !== undefined ? { clientName: ctx.clientName } : {}),
    ...(ctx.clientVersion !== undefined ? { clientVersion: ctx.clientVersion } : {}),
    ...(ctx.transforms !== undefined ? { transforms: ctx.transforms } : {}),
  };
}
