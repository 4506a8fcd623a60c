/**
 * Comparing two answers to the same request. Only what a client reads is compared: the `result`
 * or the `error`, never the JSON-RPC id (replay remaps it). Text content that holds JSON is
 * compared as JSON, so a reordered key or a changed number shows as its own path, not as one
 * changed string.
 */
import microdiff from 'microdiff';
import type { Difference, Json } from './types.ts';

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

function typeOf(value: Json): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'array' : typeof value;
}

/** JSON text that parses to an object or array; anything else stays a string. */
function parsedText(text: string): Json | undefined {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/** `content[].text` holding JSON replaced by the parsed value (a copy; the message is not changed). */
function withParsedContent(result: Json): Json {
  if (result === null || typeof result !== 'object' || Array.isArray(result) || !Array.isArray(result.content)) return result;
  const content = result.content.map((item) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item) || typeof item.text !== 'string') return item;
    const parsed = parsedText(item.text);
    return parsed === undefined ? item : { ...item, text: parsed };
  });
  return { ...result, content };
}

/**
 * 2026-07-28 results name the server that answered in `_meta` (its serverInfo, version included):
 * a candidate always differs there, so it is the envelope, not the answer.
 */
const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';

function withoutServerInfo(result: Json): Json {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return result;
  const meta = result._meta;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || !(SERVER_INFO_META in meta)) return result;
  const { [SERVER_INFO_META]: _serverInfo, ...rest } = meta;
  const { _meta: _old, ...others } = result;
  return Object.keys(rest).length ? { ...others, _meta: rest } : others;
}

/** The part of a JSON-RPC answer a client reads: `{ result }` or `{ error }`, content text parsed, serverInfo left out. */
export function comparable(answer: Record<string, unknown>): Json {
  if ('error' in answer) return { error: answer.error as Json };
  return { result: withParsedContent(withoutServerInfo((answer.result ?? null) as Json)) };
}

/** Every difference between two JSON objects or arrays, with JSON-pointer paths (RFC 6901). */
export function diffJson(before: Json, after: Json): Difference[] {
  if (before === null || after === null || typeof before !== 'object' || typeof after !== 'object' || Array.isArray(before) !== Array.isArray(after)) {
    return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ kind: typeOf(before) === typeOf(after) ? 'value_changed' : 'type_changed', path: '', before, after }];
  }
  return microdiff(before, after).map((d): Difference => {
    const path = d.path.map((key) => `/${escapePointer(String(key))}`).join('');
    if (d.type === 'CREATE') return { kind: 'field_added', path, after: d.value as Json };
    if (d.type === 'REMOVE') return { kind: 'field_dropped', path, before: d.oldValue as Json };
    const kind = typeOf(d.oldValue as Json) === typeOf(d.value as Json) ? 'value_changed' : 'type_changed';
    return { kind, path, before: d.oldValue as Json, after: d.value as Json };
  });
}

/**
 * Why an answer is a failure a client would see, or undefined: a JSON-RPC error, a tool result with
 * `isError`, or no answer at all.
 */
export function failureOf(answer: Record<string, unknown> | undefined): string | undefined {
  if (!answer) return 'no answer';
  if ('error' in answer) {
    const error = answer.error as { code?: unknown; message?: unknown } | null;
    return `JSON-RPC error ${String(error?.code)}: ${String(error?.message)}`;
  }
  const result = answer.result as { isError?: unknown; content?: { text?: unknown }[] } | undefined;
  if (result?.isError === true) {
    const text = result.content?.find((c) => typeof c?.text === 'string')?.text;
    return `tool error${typeof text === 'string' ? `: ${text.slice(0, 200)}` : ''}`;
  }
  return undefined;
}
