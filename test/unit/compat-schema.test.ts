import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assembleMatrix, cellStatus, columnKey, emptyCounts, roundTripCells, schemaCells } from '../../compat/matrix.ts';
import { diffTools } from '../../compat/schema-diff.ts';
import type { ToolDefinition } from '../../compat/types.ts';
import type { CompatCellDoc } from '../../core/documents.ts';

const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', properties, required });
const V1: ToolDefinition[] = [
  { name: 'add', inputSchema: obj({ a: { type: 'number' }, b: { type: 'number' } }, ['a', 'b']), outputSchema: obj({ result: { type: 'number' } }) },
  { name: 'echo', inputSchema: obj({ text: { type: ['string', 'number'] } }) },
  { name: 'old_name', inputSchema: obj({ q: { type: 'string' } }, ['q']) },
  { name: 'gone', inputSchema: obj({}) },
  { name: 'mode', inputSchema: obj({ m: { type: 'string', enum: ['a', 'b'] } }) },
];
const V2: ToolDefinition[] = [
  { name: 'add', inputSchema: obj({ a: { type: 'number' }, b: { type: 'number' }, c: { type: 'number' } }, ['a', 'b', 'c']), outputSchema: obj({ value: { type: 'number' } }) },
  { name: 'echo', inputSchema: obj({ text: { type: 'string' }, loud: { type: 'boolean' } }) },
  { name: 'new_name', inputSchema: obj({ q: { type: 'string' } }, ['q']) },
  { name: 'mode', inputSchema: obj({ m: { type: 'string', enum: ['a'] } }) },
  { name: 'fresh', inputSchema: obj({ n: { type: 'integer' } }) },
];

describe('schema diff', () => {
  const calls = [
    { tool: 'add', arguments: { a: 1, b: 2 } },
    { tool: 'add', arguments: { a: 1, b: 2 } },
    { tool: 'echo', arguments: { text: 'x' } },
    { tool: 'echo', arguments: { text: 5 } },
    { tool: 'old_name', arguments: { q: 'x' } },
  ];
  const report = diffTools('s', '1.0.0', '2.0.0', V1, V2, calls);
  const kinds = (tool: string) => report.changes.filter((c) => c.tool === tool).map((c) => `${c.kind}:${c.class}`).sort();

  test('names each change and its class', () => {
    assert.deepEqual(kinds('add'), ['output_schema_changed:breaking', 'required_input_added:breaking']);
    assert.deepEqual(kinds('echo'), ['input_type_narrowed:breaking', 'optional_input_added:additive']);
    assert.deepEqual(kinds('old_name'), ['tool_renamed:breaking']);
    assert.equal(report.changes.find((c) => c.kind === 'tool_renamed')!.renamedTo, 'new_name');
    assert.deepEqual(kinds('gone'), ['tool_removed:breaking']);
    assert.deepEqual(kinds('mode'), ['input_type_narrowed:breaking']);
    assert.deepEqual(kinds('fresh'), ['tool_added:additive']);
    assert.equal(report.class, 'breaking');
  });

  test('weights by captured usage: the recorded calls the new schemas reject', () => {
    assert.deepEqual(report.changes.find((c) => c.kind === 'required_input_added')!.usage, { calls: 2, rejected: 2 });
    assert.deepEqual(report.changes.find((c) => c.kind === 'input_type_narrowed' && c.tool === 'echo')!.usage, { calls: 2, rejected: 1 });
    assert.deepEqual(report.changes.find((c) => c.kind === 'tool_renamed')!.usage, { calls: 1, rejected: 1 });
    assert.equal(report.rejectedCalls, 4);
    // Through a transform that renames the tool, the call is no longer rejected.
    const moved = diffTools('s', '1.0.0', '2.0.0', V1, V2, [calls[4]!], (c) => (c.tool === 'old_name' ? { ...c, tool: 'new_name' } : c));
    assert.equal(moved.rejectedCalls, 0);
  });

  test('a call the old version refused already is no regression: bad arguments, unknown tools, the same tools', () => {
    const refusedBefore = [
      { tool: 'add', arguments: { a: 'one' } },
      { tool: 'no_such_tool', arguments: {} },
      { tool: 'mode', arguments: { m: 'z' } },
    ];
    assert.equal(diffTools('s', '1.0.0', '2.0.0', V1, V2, refusedBefore).rejectedCalls, 0);
    // Identical versions reject nothing new, whatever the capture holds (a conformance run probes errors on purpose).
    assert.equal(diffTools('s', '1.0.0', '1.0.1', V1, V1, [...calls, ...refusedBefore]).rejectedCalls, 0);
  });

  test('the same tools: no change; only additions: additive; an output change nobody calls: risky', () => {
    assert.equal(diffTools('s', '1', '2', V1, V1).class, 'none');
    assert.equal(diffTools('s', '1', '2', V1, [...V1, { name: 'x', inputSchema: obj({}) }]).class, 'additive');
    assert.equal(diffTools('s', '1', '2', [V1[0]!], [{ ...V1[0]!, outputSchema: obj({ value: { type: 'number' } }) }]).class, 'risky');
  });

  test('schema cells per tool', () => {
    const cells = schemaCells(report, 'run-1');
    const add = cells.find((c) => columnKey(c.column) === 'tool:add')!;
    assert.equal(add.status, 'breaks');
    assert.equal(add.counts.breaks, 2);
    assert.equal(cells.find((c) => columnKey(c.column) === 'tool:fresh')!.status, 'skipped');
  });
});

describe('matrix', () => {
  test('status is the worst counted outcome', () => {
    assert.equal(cellStatus(emptyCounts()), 'skipped');
    assert.equal(cellStatus({ ...emptyCounts(), equal: 3, noise: 1 }), 'noise');
    assert.equal(cellStatus({ ...emptyCounts(), equal: 3, differs: 1, breaks: 1 }), 'breaks');
  });

  test('round-trip cells per client and per tool; rows newest first, client columns first', () => {
    const docs = new Map([['m1', { protocolRevision: '2026-07-28', clientName: 'c', clientVersion: '1' }]]);
    const cells = roundTripCells(
      [
        { messageId: 'm1', direction: 'client_to_server', kind: 'request', toolName: 'add', outcome: 'exact', losses: [] },
        { messageId: 'm2', direction: 'client_to_server', kind: 'request', toolName: 'add', outcome: 'lossy', losses: [{ kind: 'field_dropped', path: '/params/arguments/z', before: 1 }] },
      ],
      docs,
      'run',
    );
    assert.deepEqual(cells.map((c) => `${columnKey(c.column)}=${c.status}`).sort(), ['client:2026-07-28:c:1=equal', 'client:unknown:unknown:unknown=differs', 'tool:add=differs']);
    const at = new Date();
    const asDoc = (version: string, c: (typeof cells)[number]): CompatCellDoc => ({ ...c, service: 's', version, columnKey: columnKey(c.column), updatedAt: at });
    const m = assembleMatrix('s', [asDoc('1.0.0', cells[0]!), asDoc('10.0.0', cells[2]!), asDoc('2.0.0', cells[1]!)]);
    assert.deepEqual(m.rows.map((r) => r.version), ['10.0.0', '2.0.0', '1.0.0']);
    assert.deepEqual(m.columns.map((c) => c.kind), ['client', 'client', 'tool']);
  });
});
