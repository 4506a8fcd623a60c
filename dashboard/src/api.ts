/** The API, same origin: JSON in and out, the admin token sent when one is saved in this browser. */
const TOKEN_KEY = 'mcpship.adminToken';

export const adminToken = {
  get: (): string | null => localStorage.getItem(TOKEN_KEY),
  set: (value: string) => (value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY)),
};

/** A payload as JSON carries it: its dates, at any depth (in nested objects and arrays), are ISO strings. */
export type Wire<T> = T extends Date ? string : T extends readonly (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = adminToken.get();
  return { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

async function parse<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as ({ error?: { code: string; message: string } } & T) | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

export async function get<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { headers: headers() }));
}

/** A read whose 404 means "not there (yet)": an endpoint another part of mcpship may not serve. */
export async function getOptional<T>(path: string): Promise<T | null> {
  try {
    return await get<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/** State changes: JSON always (the API refuses anything else, a DELETE included), the token when there is one. */
async function change<T>(method: 'POST' | 'DELETE', path: string, body: unknown): Promise<T> {
  return parse<T>(await fetch(path, { method, headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) }));
}

export const post = <T>(path: string, body: unknown = {}): Promise<T> => change<T>('POST', path, body);

export const del = (path: string): Promise<unknown> => change('DELETE', path, {});
