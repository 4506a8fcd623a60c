/**
 * Schema compatibility of two versions' `tools/list`: what changed per tool, classed breaking /
 * risky / additive, and weighted by captured usage: how many recorded calls the new version's
 * input schemas would reject (ajv). Calls may first go through the transform chain, as a pinned
 * client's would.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { differences } from './diff.ts';
import type { ChangeClass, SchemaChange, SchemaChangeKind, SchemaDiffReport, ToolDefinition } from './types.ts';

/** A captured `tools/call`: the tool and its arguments. */
export interface CapturedCall {
  tool: string;
  arguments: unknown;
}

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; enum?: unknown[]; additionalProperties?: unknown };

const CLASS_OF: Record<SchemaChangeKind, ChangeClass> = {
  tool_removed: 'breaking',
  tool_renamed: 'breaking',
  tool_added: 'additive',
  required_input_added: 'breaking',
  input_became_required: 'breaking',
  optional_input_added: 'additive',
  input_removed: 'risky',
  input_type_narrowed: 'breaking',
  input_type_widened: 'additive',
  input_type_changed: 'breaking',
  output_schema_changed: 'risky',
  annotations_changed: 'risky',
};

const RANK: Record<ChangeClass, number> = { additive: 0, risky: 1, breaking: 2 };

function types(s: Schema | undefined): Set<string> | undefined {
  if (!s || s.type === undefined) return undefined;
  const list = Array.isArray(s.type) ? s.type : [s.type];
  // JSON Schema: every integer is a number.
  return new Set(list.flatMap((t) => (t === 'number' ? ['number', 'integer'] : [t])));
}

const subset = (a: Set<unknown>, b: Set<unknown>) => [...a].every((x) => b.has(x));
const pointer = (name: string) => `/properties/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
const same = (a: unknown, b: unknown) => differences(a ?? null, b ?? null).length === 0;

function inputChanges(tool: string, before: Schema, after: Schema): Omit<SchemaChange, 'usage' | 'class'>[] {
  const out: Omit<SchemaChange, 'usage' | 'class'>[] = [];
  const oldProps = before.properties ?? {};
  const newProps = after.properties ?? {};
  const oldRequired = new Set(before.required ?? []);
  for (const name of after.required ?? []) {
    if (oldRequired.has(name)) continue;
    out.push(name in oldProps
      ? { kind: 'input_became_required', tool, path: pointer(name), detail: `input "${name}" is now required` }
      : { kind: 'required_input_added', tool, path: pointer(name), detail: `new required input "${name}"` });
  }
  const newRequired = new Set(after.required ?? []);
  for (const name of Object.keys(newProps)) {
    if (!(name in oldProps) && !newRequired.has(name)) out.push({ kind: 'optional_input_added', tool, path: pointer(name), detail: `new optional input "${name}"` });
  }
  for (const [name, oldSchema] of Object.entries(oldProps)) {
    const newSchema = newProps[name];
    if (!newSchema) {
      out.push({ kind: 'input_removed', tool, path: pointer(name), detail: `input "${name}" removed` });
      continue;
    }
    const [ot, nt] = [types(oldSchema), types(newSchema)];
    const oldEnum = oldSchema.enum ? new Set(oldSchema.enum.map((v) => JSON.stringify(v))) : undefined;
    const newEnum = newSchema.enum ? new Set(newSchema.enum.map((v) => JSON.stringify(v))) : undefined;
    const narrowedEnum = newEnum !== undefined && (oldEnum === undefined || !subset(oldEnum, newEnum));
    if (ot && nt && !same([...ot].sort(), [...nt].sort())) {
      const kind = subset(nt, ot) ? 'input_type_narrowed' : subset(ot, nt) ? 'input_type_widened' : 'input_type_changed';
      out.push({ kind, tool, path: pointer(name), detail: `input "${name}" type ${[...ot].join('|')} → ${[...nt].join('|')}` });
    } else if (!ot && nt) out.push({ kind: 'input_type_narrowed', tool, path: pointer(name), detail: `input "${name}" now limited to ${[...nt].join('|')}` });
    else if (narrowedEnum) out.push({ kind: 'input_type_narrowed', tool, path: `${pointer(name)}/enum`, detail: `input "${name}" accepts fewer values` });
  }
  return out;
}

function validator(ajv: Ajv, schema: Record<string, unknown>): ValidateFunction | undefined {
  const { $schema: _ignored, ...rest } = schema;
  try {
    return ajv.compile(rest);
  } catch {
    // A schema ajv cannot compile cannot reject anything we could count.
    return undefined;
  }
}

/** The changes from `before` to `after`, each with the captured usage of its tool. */
export function diffTools(
  service: string,
  from: string,
  to: string,
  before: readonly ToolDefinition[],
  after: readonly ToolDefinition[],
  calls: readonly CapturedCall[] = [],
  forward: (call: CapturedCall) => CapturedCall = (c) => c,
): SchemaDiffReport {
  const ajv = new Ajv({ strict: false, allErrors: false });
  const oldByName = new Map(before.map((t) => [t.name, t]));
  const newByName = new Map(after.map((t) => [t.name, t]));
  const raw: Omit<SchemaChange, 'usage' | 'class'>[] = [];
  const added = after.filter((t) => !oldByName.has(t.name));
  const renamedTo = new Map<string, string>();
  for (const t of before) {
    if (newByName.has(t.name)) continue;
    const twin = added.find((a) => same(a.inputSchema, t.inputSchema) && ![...renamedTo.values()].includes(a.name));
    if (twin) {
      renamedTo.set(t.name, twin.name);
      raw.push({ kind: 'tool_renamed', tool: t.name, renamedTo: twin.name, detail: `tool "${t.name}" renamed to "${twin.name}"` });
    } else raw.push({ kind: 'tool_removed', tool: t.name, detail: `tool "${t.name}" removed` });
  }
  for (const t of added) if (![...renamedTo.values()].includes(t.name)) raw.push({ kind: 'tool_added', tool: t.name, detail: `new tool "${t.name}"` });
  for (const t of before) {
    const n = newByName.get(t.name);
    if (!n) continue;
    raw.push(...inputChanges(t.name, t.inputSchema as Schema, n.inputSchema as Schema));
    if (!same(t.outputSchema, n.outputSchema)) {
      const paths = differences(t.outputSchema ?? null, n.outputSchema ?? null).map((d) => d.path);
      raw.push({ kind: 'output_schema_changed', tool: t.name, path: paths[0] ?? '', detail: `output schema changed at ${paths.slice(0, 3).join(', ') || '/'}` });
    }
    if (!same(t.annotations, n.annotations)) raw.push({ kind: 'annotations_changed', tool: t.name, detail: 'annotations changed' });
  }

  // Usage: the captured calls of each tool, and how many the new version would reject that the
  // old one accepted. A call the old version refused already (a client's mistake, a probe of an
  // unknown tool, as conformance suites send) is no regression of the new one.
  const usage = new Map<string, { calls: number; rejected: number }>();
  const validators = new Map<ToolDefinition, ValidateFunction | undefined>();
  const accepts = (tool: ToolDefinition | undefined, args: unknown) => {
    if (!tool) return false;
    if (!validators.has(tool)) validators.set(tool, validator(ajv, tool.inputSchema));
    const check = validators.get(tool);
    return !check || check(args ?? {});
  };
  for (const call of calls) {
    const u = usage.get(call.tool) ?? { calls: 0, rejected: 0 };
    u.calls++;
    const moved = forward(call);
    // A pinned client's call is in its own version's shapes, which `before` does not describe: only the new side is checked.
    const oldAccepted = moved !== call || accepts(oldByName.get(call.tool), call.arguments);
    if (oldAccepted && !accepts(newByName.get(moved.tool), moved.arguments)) u.rejected++;
    usage.set(call.tool, u);
  }
  const changes: SchemaChange[] = raw.map((c) => {
    const u = usage.get(c.tool) ?? { calls: 0, rejected: 0 };
    // A risky change of a tool whose recorded calls would now be rejected breaks those clients.
    const cls = u.rejected > 0 && CLASS_OF[c.kind] === 'risky' ? 'breaking' : CLASS_OF[c.kind];
    return { ...c, class: cls, usage: { ...u } };
  });
  const worst = changes.reduce<ChangeClass | 'none'>((w, c) => (w === 'none' || RANK[c.class] > RANK[w] ? c.class : w), 'none');
  const rejectedCalls = [...usage.values()].reduce((n, u) => n + u.rejected, 0);
  return { service, from, to, changes, class: worst, capturedCalls: calls.length, rejectedCalls };
}
