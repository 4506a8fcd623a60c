/**
 * The client key: who is asking, for requests that have no session to pin them. Stateless clients
 * (2026-07-28) are kept on one service version per key during a canary, so the key must be stable
 * across a client's requests and must never hold a secret. The chain, first match wins:
 *
 *   1. `X-Mcpship-Client` header: a name the client (or a proxy in front) chooses, kept as given;
 *   2. the `Authorization` credential, hashed (never stored or reported raw);
 *   3. `_meta` client info (name and version) together with the remote address, hashed;
 *   4. the remote address alone, hashed.
 */
import { createHash } from 'node:crypto';
import type { JsonRpcMessage } from '../../core/routing.ts';
import { CLIENT_INFO_META_KEY, requestMeta } from './protocol-generation.ts';

export const CLIENT_HEADER = 'x-mcpship-client';
export const CLIENT_HEADER_MAX = 200;

export type ClientKeySource = 'header' | 'credential' | 'client-info' | 'address';

export interface ClientKeyInput {
  /** The X-Mcpship-Client header, if sent. */
  clientHeader?: string;
  /** The Authorization header, if sent. */
  authorization?: string;
  /** The request's JSON-RPC messages (their `_meta` may describe the client). */
  messages: readonly JsonRpcMessage[];
  /** The client's address as the gateway sees it (express's req.ip, which honours `trust proxy`). */
  remoteAddress?: string;
}

export type ClientKeyResult = { ok: true; key: string; source: ClientKeySource } | { ok: false; error: string };

// Visible ASCII only: the key is shown in captures and logs as it came.
const HEADER_VALUE = /^[\x21-\x7e]+$/;

const digest = (label: string, ...parts: string[]): string => {
  const hash = createHash('sha256').update(label);
  for (const part of parts) hash.update('\u0000').update(part);
  return hash.digest('base64url').slice(0, 22);
};

function clientInfo(messages: readonly JsonRpcMessage[]): { name: string; version: string } | undefined {
  for (const msg of messages) {
    // 2026-07-28 carries it in every request's _meta; a 2025 initialize in params.clientInfo.
    const info = requestMeta(msg)?.[CLIENT_INFO_META_KEY] ?? (msg.method === 'initialize' ? (msg.params as Record<string, unknown> | undefined)?.clientInfo : undefined);
    if (typeof info === 'object' && info !== null) {
      const { name, version } = info as Record<string, unknown>;
      if (typeof name === 'string') return { name, version: typeof version === 'string' ? version : '' };
    }
  }
  return undefined;
}

export function clientKey(input: ClientKeyInput): ClientKeyResult {
  if (input.clientHeader !== undefined) {
    const value = input.clientHeader;
    if (value.length > CLIENT_HEADER_MAX || !HEADER_VALUE.test(value)) {
      return { ok: false, error: `X-Mcpship-Client must be 1 to ${CLIENT_HEADER_MAX} visible ASCII characters` };
    }
    return { ok: true, key: `client:${value}`, source: 'header' };
  }
  if (input.authorization !== undefined) return { ok: true, key: `cred:${digest('credential', input.authorization)}`, source: 'credential' };
  const address = input.remoteAddress ?? '';
  const info = clientInfo(input.messages);
  if (info) return { ok: true, key: `info:${digest('client-info', info.name, info.version, address)}`, source: 'client-info' };
  return { ok: true, key: `addr:${digest('address', address)}`, source: 'address' };
}
