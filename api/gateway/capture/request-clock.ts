/**
 * Pairs responses with their requests, for a response's latency and the tool it answers. Requests
 * go both ways (a server asks the client for sampling), so the key carries the request's direction.
 */
import type { MessageDirection } from '../../../core/documents.ts';
import type { ExchangeContext } from '../traffic.ts';

interface Open {
  at: number;
  toolName?: string;
}

export class RequestClock {
  static readonly MAX_OPEN_REQUESTS = 10_000;
  /** Requests waiting for their response, per exchange: the usual case, and the only one without a session. */
  private readonly byExchange = new WeakMap<ExchangeContext, Map<string, Open>>();
  /** Requests per session, for a response that comes on another stream (e.g. the GET SSE stream). */
  private readonly bySession = new Map<string, Open>();

  request(ctx: ExchangeContext, direction: MessageDirection, rpcId: unknown, at: number, toolName?: string): void {
    const key = `${direction}\u0000${JSON.stringify(rpcId)}`;
    const open: Open = { at, ...(toolName !== undefined ? { toolName } : {}) };
    let mine = this.byExchange.get(ctx);
    if (!mine) this.byExchange.set(ctx, (mine = new Map()));
    mine.set(key, open);
    if (ctx.sessionId) {
      this.bySession.set(`${ctx.service}\u0000${ctx.sessionId}\u0000${key}`, open);
      if (this.bySession.size > RequestClock.MAX_OPEN_REQUESTS) {
        this.bySession.delete(this.bySession.keys().next().value as string); // never answered: forget the oldest
      }
    }
  }

  /** The request a response of `direction` answers, forgotten once matched. */
  answer(ctx: ExchangeContext, direction: MessageDirection, rpcId: unknown): Open | undefined {
    const requestDirection: MessageDirection = direction === 'server_to_client' ? 'client_to_server' : 'server_to_client';
    const key = `${requestDirection}\u0000${JSON.stringify(rpcId)}`;
    const mine = this.byExchange.get(ctx);
    let open = mine?.get(key);
    mine?.delete(key);
    if (ctx.sessionId) {
      const sessionKey = `${ctx.service}\u0000${ctx.sessionId}\u0000${key}`;
      open ??= this.bySession.get(sessionKey);
      this.bySession.delete(sessionKey);
    }
    return open;
  }
}
