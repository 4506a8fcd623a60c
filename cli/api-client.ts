import type { Config } from '../core/config.ts';

export class ApiError extends Error {
  override name = 'ApiError';
}

/** The CLI's way into a running mcpship: its REST API. */
export class ApiClient {
  readonly base: string;
  constructor(
    config: Config,
    base?: string,
    private readonly token = config.api.adminToken,
  ) {
    const host = config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host;
    this.base = (base ?? `http://${host}:${config.api.port}`).replace(/\/$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    // The API takes state changes only as JSON (a browser form cannot send that), even without a body.
    const json = body ?? (method === 'GET' ? undefined : {});
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: this.headers(json === undefined ? {} : { 'content-type': 'application/json' }),
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
    } catch (err) {
      throw new ApiError(`cannot reach the mcpship API at ${this.base} (${(err as Error).cause ?? (err as Error).message}); is \`mcpship up\` running?`);
    }
    const answer = (await res.json().catch(() => ({}))) as T & { error?: { message: string } };
    if (!res.ok) throw new ApiError(answer.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
    return answer;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /**
   * Reads a server-sent event stream, calling onEvent with each event's data, until the signal
   * aborts or the server ends it. onOpen runs once the server answered: from then on, nothing
   * that happens is missed.
   */
  async stream(path: string, onEvent: (data: string, id?: string) => void, signal: AbortSignal, onOpen?: () => void | Promise<void>): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { headers: this.headers({ accept: 'text/event-stream' }), signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ApiError(`cannot reach the mcpship API at ${this.base} (${(err as Error).cause ?? (err as Error).message}); is \`mcpship up\` running?`);
    }
    if (!res.ok || !res.body) {
      const answer = (await res.json().catch(() => ({}))) as { error?: { message: string } };
      throw new ApiError(answer.error?.message ?? `${path}: HTTP ${res.status}`);
    }
    await onOpen?.();
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        const id = block.split('\n').find((l) => l.startsWith('id: '))?.slice(4);
        if (data) onEvent(data, id);
      }
    }
  }
}
