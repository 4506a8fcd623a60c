/**
 * Redaction of captured messages: dotted paths whose values are replaced before storage. Key names
 * match without regard to case, `_` or `-` (`apiKey`, `api_key`, `API-KEY` are one name), so that a
 * server's spelling cannot slip a secret past the list; `*` stands for any key or array index.
 * DEFAULT_REDACT is always applied; the configured list adds to it.
 */

export const REDACTED = '[REDACTED]';

/** Credentials a tool call commonly carries. Always on, whatever the configuration says. */
export const DEFAULT_REDACT: readonly string[] = [
  'params.arguments.password',
  'params.arguments.passwd',
  'params.arguments.token',
  'params.arguments.apiKey',
  'params.arguments.secret',
  'params.arguments.clientSecret',
  'params.arguments.accessToken',
  'params.arguments.refreshToken',
  'params.arguments.authorization',
];

/** A compiled redaction list: a tree of normalised path segments, so each object is scanned once. */
export interface RedactPaths {
  readonly children: ReadonlyMap<string, RedactPaths>;
  /** A configured path ends here: the value is replaced. */
  readonly leaf: boolean;
}

export function normaliseKey(key: string): string {
  return key.replace(/[-_]/g, '').toLowerCase();
}

interface MutableNode {
  children: Map<string, MutableNode>;
  leaf: boolean;
}

/** The defaults and `extra`, compiled. */
export function compileRedactPaths(extra: readonly string[] = [], defaults: readonly string[] = DEFAULT_REDACT): RedactPaths {
  const root: MutableNode = { children: new Map(), leaf: false };
  for (const p of [...defaults, ...extra]) {
    const segs = p.split('.').filter(Boolean);
    if (segs.length === 0) continue;
    let node = root;
    for (const seg of segs) {
      const key = seg === '*' ? seg : normaliseKey(seg);
      let next = node.children.get(key);
      if (!next) node.children.set(key, (next = { children: new Map(), leaf: false }));
      node = next;
    }
    node.leaf = true;
  }
  return root;
}

/**
 * The message with the value at each path replaced by REDACTED. Copy on write: the caller's
 * object (which the gateway may still forward) is never changed, untouched branches are shared,
 * and a message with nothing to redact comes back as the same object.
 */
export function redact<T>(msg: T, paths: RedactPaths): T {
  return redactNode(msg, paths) as T;
}

function redactNode(node: unknown, paths: RedactPaths): unknown {
  if (node === null || typeof node !== 'object' || paths.children.size === 0) return node;
  const rec = node as Record<string, unknown>;
  const any = paths.children.get('*');
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(rec)) {
    const named = paths.children.get(normaliseKey(key));
    if (!named && !any) continue;
    const child = rec[key];
    let next: unknown;
    if (named?.leaf || any?.leaf) next = REDACTED;
    else {
      next = named ? redactNode(child, named) : child;
      if (any) next = redactNode(next, any);
    }
    if (next !== child) {
      copy ??= (Array.isArray(node) ? [...node] : { ...rec }) as Record<string, unknown>;
      copy[key] = next;
    }
  }
  return copy ?? node;
}
