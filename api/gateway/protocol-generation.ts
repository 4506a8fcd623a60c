/**
 * Which MCP protocol generation one request belongs to. The gateway decides this per request, never
 * per server or per version: servers migrate by serving both generations at one endpoint, and a
 * version's other clients say nothing about this one. docs/protocol.md explains the routing of each.
 */
import type { JsonRpcMessage } from '../../core/routing.ts';

/** The session revisions: negotiated in initialize, optionally with an Mcp-Session-Id. */
export const SESSION_REVISIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'] as const;
/** The first stateless revision: no initialize, no session, protocol version on every request. */
export const FIRST_STATELESS_REVISION = '2026-07-28';
/** Every revision mcpship knows how to route (the newest last). */
export const KNOWN_REVISIONS = [...SESSION_REVISIONS, FIRST_STATELESS_REVISION] as const;

/** The `_meta` key in which 2026-07-28 requests name their protocol revision. */
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** The `_meta` key in which 2026-07-28 requests may describe the client. */
export const CLIENT_INFO_META_KEY = 'io.modelcontextprotocol/clientInfo';

export type Generation = 'session' | 'stateless';

export interface ProtocolFacts {
  generation: Generation;
  /** The revision the request names (body `_meta` first, then the MCP-Protocol-Version header), if any. */
  revision?: string;
}

const REVISION = /^\d{4}-\d{2}-\d{2}$/;

/** A revision string in the spec's date form, from 2026-07-28 on. */
export function isStatelessRevision(revision: string): boolean {
  return REVISION.test(revision) && revision >= FIRST_STATELESS_REVISION;
}

/** The `_meta` object of a request or notification, when it has one. */
export function requestMeta(msg: JsonRpcMessage | undefined): Record<string, unknown> | undefined {
  const params = msg?.params;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
  const meta = (params as Record<string, unknown>)._meta;
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
}

/**
 * The generation of a request from its MCP-Protocol-Version header and its JSON-RPC messages.
 * Stateless when a message carries the `_meta` protocol-version claim (whatever revision it names:
 * the server's 2026 path is the one that answers an unsupported revision, as the SDK routes it),
 * or when the header names a revision from 2026-07-28 on. Everything else — initialize, requests
 * with a session revision, body-less GET and DELETE without a modern header — is the session
 * generation, routed as before.
 */
export function protocolFacts(headerRevision: string | undefined, messages: readonly JsonRpcMessage[]): ProtocolFacts {
  for (const msg of messages) {
    const meta = requestMeta(msg);
    if (meta && Object.hasOwn(meta, PROTOCOL_VERSION_META_KEY)) {
      const claimed = meta[PROTOCOL_VERSION_META_KEY];
      const revision = typeof claimed === 'string' ? claimed : headerRevision;
      return { generation: 'stateless', ...(revision !== undefined ? { revision } : {}) };
    }
  }
  if (headerRevision !== undefined) return { generation: isStatelessRevision(headerRevision) ? 'stateless' : 'session', revision: headerRevision };
  return { generation: 'session' };
}
