/**
 * The 2026-07-28 Streamable HTTP rule that the standard request headers mirror the body: a stdio
 * server never sees the HTTP headers, so the bridge, which does, checks them for it. The MCP
 * SDK's classifier (classifyInboundRequest) already checks MCP-Protocol-Version and Mcp-Method
 * against the body when they are present; this adds what it leaves to the serving entry: both
 * headers are required, and Mcp-Name (plain, or in the `=?base64?…?=` sentinel form) must name the
 * tool, prompt or resource of the body. `Mcp-Param-*` headers are not checked: that needs the
 * tool's input schema, which only the server has.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';

/** Which body field Mcp-Name mirrors, per method. */
const NAME_FIELD: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** The header's value, decoded from the Base64 sentinel form; undefined when that form is broken. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith('=?base64?') || !value.endsWith('?=')) return value;
  const match = SENTINEL.exec(value);
  if (!match || match[1]!.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(match[1]!, 'base64');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return text.decode(bytes);
  } catch {
    return undefined;
  }
}

export interface StandardHeaders {
  protocolVersion?: string | undefined;
  method?: string | undefined;
  name?: string | undefined;
}

/** Why the request's headers do not match its body (a HeaderMismatch, -32020), or undefined. */
export function headerMismatch(headers: StandardHeaders, request: JSONRPCRequest): string | undefined {
  if (headers.protocolVersion === undefined) return 'the required MCP-Protocol-Version header is missing';
  if (headers.method === undefined) return `the body names method ${request.method} but the required Mcp-Method header is missing`;
  const field = NAME_FIELD[request.method];
  const body = field === undefined ? undefined : (request.params as Record<string, unknown> | undefined)?.[field];
  if (typeof body !== 'string') return undefined;
  if (headers.name === undefined) return `the body carries params.${field} "${body}" but the required Mcp-Name header is missing`;
  const decoded = decodeHeaderValue(headers.name.trim());
  if (decoded === undefined) return 'the Mcp-Name header carries an invalid Base64 sentinel value';
  if (decoded !== body) return `the body carries params.${field} "${body}" but the Mcp-Name header names "${decoded}"`;
  return undefined;
}
