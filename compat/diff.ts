/**
 * Differences between two JSON values, classified, at RFC 6901 JSON-pointer paths. microdiff
 * does the walk; this only names what it finds.
 */
import microdiff from 'microdiff';
import type { Difference, Json } from './types.ts';

/** `/a/b~1c/0` for ['a', 'b/c', 0]. */
export function jsonPointer(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) out += '/' + String(part).replace(/~/g, '~0').replace(/\//g, '~1');
  return out;
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** What changed from `before` to `after`; empty when they are equal as JSON. */
export function differences(before: unknown, after: unknown): Difference[] {
  if (jsonType(before) !== 'object' && jsonType(before) !== 'array') {
    if (Object.is(before, after)) return [];
    return [{ kind: jsonType(before) === jsonType(after) ? 'value_changed' : 'type_changed', path: '', before: before as Json, after: after as Json }];
  }
  if (jsonType(before) !== jsonType(after)) return [{ kind: 'type_changed', path: '', before: before as Json, after: after as Json }];
  return microdiff(before as Record<string, unknown>, after as Record<string, unknown>).map((d): Difference => {
    const path = jsonPointer(d.path);
    if (d.type === 'REMOVE') return { kind: 'field_dropped', path, before: d.oldValue as Json };
    if (d.type === 'CREATE') return { kind: 'field_added', path, after: d.value as Json };
    const kind = jsonType(d.oldValue) === jsonType(d.value) ? 'value_changed' : 'type_changed';
    return { kind, path, before: d.oldValue as Json, after: d.value as Json };
  });
}
