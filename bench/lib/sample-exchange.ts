/** One captured `tools/call add` exchange as the gateway sees it, for the database benches. */
import { randomUUID } from 'node:crypto';
import type { ExchangeContext, JsonRpcMessage } from '../../api/gateway/traffic.ts';

export function exchange(i: number, sessionId: string): { ctx: ExchangeContext; request: JsonRpcMessage; response: JsonRpcMessage; requestRaw: string; responseRaw: string } {
  const request = { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'add', arguments: { a: i, b: 2 } } } as unknown as JsonRpcMessage;
  const response = { jsonrpc: '2.0', id: i, result: { content: [{ type: 'text', text: String(i + 2) }] } } as unknown as JsonRpcMessage;
  const ctx: ExchangeContext = {
    service: 'calc',
    version: '1.0.0',
    instanceId: 'calc-1',
    sessionId,
    protocolRevision: '2025-11-25',
    generation: 'session',
    clientKey: 'addr:0123456789abcdef',
    methods: ['tools/call'],
    startedAt: performance.now(),
    traceId: randomUUID().replaceAll('-', ''),
    clientName: 'mcpship-bench',
    clientVersion: '0',
  };
  return { ctx, request, response, requestRaw: JSON.stringify(request), responseRaw: JSON.stringify(response) };
}
