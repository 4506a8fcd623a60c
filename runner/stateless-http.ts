/**
 * The HTTP side of one stateless (2026-07-28) request at the stdio bridge, per the revision's
 * Streamable HTTP transport: a single JSON response, or an SSE stream when the server sends related
 * notifications (progress, log messages) before its response; `subscriptions/listen` is always a
 * stream that stays open. The client closing the connection first cancels the request (stdio has
 * no stream to close, so the process is sent `notifications/cancelled`).
 *
 * The request itself was classified by the MCP SDK's own classifier (classifyInboundRequest) and
 * its headers checked against its body (runner/stateless-headers.ts) before it gets here.
 */
import type { Request, Response } from 'express';
import type { JSONRPCMessage, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { LOG_LEVEL_KEY, type Exchange } from './stdio-mux.ts';
import type { StatelessPool } from './stdio-pool.ts';

/** Keeps a quiet subscription stream from being closed by idle proxies and clients. */
const KEEP_ALIVE_MS = 15_000;

/**
 * The HTTP status of a server's JSON-RPC error, as the spec's transport rules give it: an unknown
 * method is 404, an unsupported protocol version and a missing client capability are 400; any other
 * error is the result of the request, sent with 200.
 */
export function statusOfError(code: number): number {
  if (code === -32601) return 404;
  if (code === -32022 || code === -32021) return 400;
  return 200;
}

const rpcError = (id: JSONRPCRequest['id'] | null, code: number, message: string) => ({ jsonrpc: '2.0' as const, id, error: { code, message } });

export async function serveStateless(pool: StatelessPool, request: JSONRPCRequest, req: Request, res: Response): Promise<void> {
  const listen = request.method === 'subscriptions/listen';
  let child;
  try {
    child = await pool.acquire((request.params as { _meta?: Record<string, unknown> } | undefined)?._meta?.[LOG_LEVEL_KEY] !== undefined);
  } catch (err) {
    res.status(503).json(rpcError(request.id, -32603, `The stdio MCP server is not available: ${(err as Error).message}`));
    return;
  }
  if (req.socket.destroyed) return;

  let streaming = false;
  let finished = false;
  let keepAlive: NodeJS.Timeout | undefined;
  const stream = () => {
    if (streaming) return;
    streaming = true;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    if (listen) keepAlive = setInterval(() => res.write(':\n\n'), KEEP_ALIVE_MS);
  };
  const finish = () => {
    finished = true;
    clearInterval(keepAlive);
  };
  const write = (message: JSONRPCMessage) => res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);

  const exchange: Exchange = {
    deliver(message) {
      if (finished) return;
      if ('method' in message) {
        stream();
        write(message);
        return;
      }
      finish();
      if (streaming) {
        write(message);
        res.end();
        return;
      }
      const error = (message as { error?: { code: number } }).error;
      res.status(error ? statusOfError(error.code) : 200).json(message);
    },
    end(reason) {
      if (finished) return;
      finish();
      // A stream already started says 200; the client sees it end without a response.
      if (streaming) res.end();
      else res.status(502).json(rpcError(request.id, -32603, reason));
    },
  };

  if (listen) stream();
  const cancel = child.dispatch(request, exchange);
  res.once('close', () => {
    if (finished) return;
    finish();
    cancel();
  });
}
