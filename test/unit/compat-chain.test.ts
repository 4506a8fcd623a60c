import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { backwardResponse, buildChain, chainProblems, ChainError, cloneJson, forwardRequest } from '../../compat/chain.ts';
import { differences, jsonPointer } from '../../compat/diff.ts';
import { checkDefinition, loadTransforms, TransformLoadError } from '../../compat/load.ts';
import { roundTrip, roundTripReport } from '../../compat/round-trip.ts';
import type { JsonRpcMessage, LoadedTransform } from '../../compat/types.ts';

const CALC_2 = path.resolve(import.meta.dirname, '../../examples/upgrades/calculator-2.0.0');

/** A rename of one argument key of tools/call `tool`, both ways (a step of a longer chain). */
function rename(from: string, to: string, oldKey: string, newKey: string): LoadedTransform {
  const move = (args: Record<string, unknown> | undefined, a: string, b: string) => {
    if (args && a in args) {
      args[b] = args[a];
      delete args[a];
    }
  };
  return {
    id: `transforms/${from}-to-${to}.ts`,
    from,
    to,
    description: `${oldKey} → ${newKey}`,
    requestForward: (m) => (move((m.params as { arguments?: Record<string, unknown> })?.arguments, oldKey, newKey), m),
    requestInverse: (m) => (move((m.params as { arguments?: Record<string, unknown> })?.arguments, newKey, oldKey), m),
    responseBackward: (m) => (move((m.result as { structuredContent?: Record<string, unknown> })?.structuredContent, newKey, oldKey), m),
    responseInverse: (m) => (move((m.result as { structuredContent?: Record<string, unknown> })?.structuredContent, oldKey, newKey), m),
  };
}

const call = (args: Record<string, unknown>, id: number | string = 1): JsonRpcMessage => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'add', arguments: args } });

describe('diff', () => {
  test('classifies dropped, added, type and value changes at JSON pointers', () => {
    assert.deepEqual(differences({ a: { 'b/c': 1, 'd~': [1, 2] }, e: 'x' }, { a: { 'b/c': '1', 'd~': [1, 3] }, f: true }), [
      { kind: 'type_changed', path: '/a/b~1c', before: 1, after: '1' },
      { kind: 'value_changed', path: '/a/d~0/1', before: 2, after: 3 },
      { kind: 'field_dropped', path: '/e', before: 'x' },
      { kind: 'field_added', path: '/f', after: true },
    ]);
    assert.equal(jsonPointer([]), '');
  });

  test('a JSON value equals itself and its copy', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => differences(v, structuredClone(v)).length === 0));
  });
});

describe('chains', () => {
  const steps = [rename('1.0.0', '2.0.0', 'a', 'x'), rename('2.0.0', '3.0.0', 'x', 'first'), rename('3.0.0', '3.2.0', 'b', 'second')];

  test('compose across many versions, forward in order and backward in reverse', () => {
    const chain = buildChain('calc', steps, '1.0.0', '3.2.0');
    assert.deepEqual(chain.steps.map((s) => s.to), ['2.0.0', '3.0.0', '3.2.0']);
    const original = call({ a: 1, b: 2 });
    const fwd = forwardRequest(chain, original);
    assert.deepEqual((fwd.message.params as { arguments: unknown }).arguments, { first: 1, second: 2 });
    assert.deepEqual((original.params as { arguments: unknown }).arguments, { a: 1, b: 2 }, 'the original is untouched');
    const back = backwardResponse(chain, { jsonrpc: '2.0', id: 1, result: { structuredContent: { first: 3, second: 4 } } }, fwd);
    assert.deepEqual((back.message.result as { structuredContent: unknown }).structuredContent, { a: 3, b: 4 });
    assert.deepEqual(back.applied, steps.map((s) => s.id).reverse());
  });

  test('a client between two transforms starts at the step that covers it; the same shape needs none', () => {
    assert.deepEqual(buildChain('calc', steps, '2.1.0', '3.2.0').steps.map((s) => s.from), ['2.0.0', '3.0.0']);
    assert.deepEqual(buildChain('calc', steps, '3.2.0', '3.2.5').steps, []);
  });

  test('gaps, overlaps and backwards chains are refused with the reason', () => {
    const gappy = [steps[0]!, steps[2]!];
    assert.deepEqual(chainProblems(gappy), ['gap in the chain: nothing migrates 2.0.0 to 3.0.0 (between transforms/1.0.0-to-2.0.0.ts and transforms/3.0.0-to-3.2.0.ts)']);
    assert.throws(() => buildChain('calc', gappy, '1.0.0', '3.2.0'), ChainError);
    assert.match(chainProblems([steps[0]!, rename('1.5.0', '2.5.0', 'q', 'r')])[0]!, /overlap/);
    assert.match(chainProblems([rename('2.0.0', '1.0.0', 'a', 'b')])[0]!, /must be older/);
    assert.match(chainProblems(steps, '3.0.0')[0]!, /newer than the service's version 3.0.0/);
    assert.throws(() => buildChain('calc', steps, '3.2.0', '1.0.0'), /newer than/);
    assert.throws(() => buildChain('calc', steps.slice(1), '1.0.0', '3.2.0'), /no transform covers version 1.0.0/);
    assert.deepEqual(chainProblems(steps), []);
  });

  test('a copy keeps a "__proto__" key that JSON.parse made an own key (fast-check found it lost)', () => {
    const parsed = JSON.parse('{"a":{"__proto__":0,"b":[{"__proto__":{"c":1}}]}}') as unknown;
    const copy = cloneJson(parsed);
    assert.deepStrictEqual(copy, parsed);
    assert.equal(JSON.stringify(copy), JSON.stringify(parsed));
    assert.equal(Object.getPrototypeOf((copy as { a: object }).a), Object.prototype);
  });

  test('round trip of any call through a three-step chain is exact when the renames are inverses', () => {
    const chain = buildChain('calc', steps, '1.0.0', '3.2.0');
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue(), (extra, value) => {
        const args = { ...extra, a: value, b: 2 };
        delete (args as Record<string, unknown>).x;
        delete (args as Record<string, unknown>).first;
        delete (args as Record<string, unknown>).second;
        return roundTrip(chain, { direction: 'client_to_server', kind: 'request', message: call(args) }).outcome === 'exact';
      }),
    );
  });

  test('a lossy transform is reported with classified losses and paths; a throwing one as failed', () => {
    const lossy: LoadedTransform = { ...rename('1.0.0', '2.0.0', 'a', 'x'), requestInverse: (m) => m };
    const r = roundTrip(buildChain('calc', [lossy], '1.0.0', '2.0.0'), { direction: 'client_to_server', kind: 'request', message: call({ a: 1 }) });
    assert.equal(r.outcome, 'lossy');
    const byPath = (a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path);
    assert.deepEqual([...r.losses].sort(byPath), [
      { kind: 'field_dropped', path: '/params/arguments/a', before: 1 },
      { kind: 'field_added', path: '/params/arguments/x', after: 1 },
    ]);
    const throwing: LoadedTransform = { ...rename('1.0.0', '2.0.0', 'a', 'x'), responseBackward: () => { throw new Error('boom'); } };
    const chain = buildChain('calc', [throwing], '1.0.0', '2.0.0');
    const f = roundTrip(chain, { direction: 'server_to_client', kind: 'response', message: { jsonrpc: '2.0', id: 1, result: {} }, request: call({ a: 1 }), at: 'to' });
    assert.equal(f.outcome, 'failed');
    assert.deepEqual(f.failure, { transformId: 'transforms/1.0.0-to-2.0.0.ts', phase: 'responseBackward', message: 'boom' });
    const report = roundTripReport(chain, [f, r]);
    assert.equal(report.failed, 1);
    assert.equal(report.lossy, 1);
    assert.deepEqual(report.topPaths[0], { path: '/params/arguments/a', kind: 'field_dropped', count: 1 });
  });

  test('a step without an inverse leaves its messages unchecked, not failed', () => {
    const oneWay: LoadedTransform = { id: 't.ts', from: '1.0.0', to: '2.0.0', description: 'd', requestForward: (m) => m };
    assert.equal(roundTrip(buildChain('s', [oneWay], '1.0.0', '2.0.0'), { direction: 'client_to_server', kind: 'request', message: call({}) }).outcome, 'unchecked');
  });
});

describe('loading', () => {
  test('the calculator 2.0.0 sample transform loads and round-trips captured 1.0 traffic exactly', async () => {
    const transforms = await loadTransforms(CALC_2);
    assert.deepEqual(transforms.map((t) => [t.id, t.from, t.to]), [['transforms/1.0-to-2.0.ts', '1.0.0', '2.0.0']]);
    const chain = buildChain('calculator', transforms, '1.0.0', '2.0.0');
    const request = call({ a: 2, b: 3 }, 7);
    assert.deepEqual((forwardRequest(chain, request).message.params as { arguments: unknown }).arguments, { x: 2, y: 3 });
    const served = { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: '5' }], structuredContent: { value: 5 } } };
    const answered = backwardResponse(chain, served, forwardRequest(chain, request));
    assert.deepEqual((answered.message.result as { structuredContent: unknown }).structuredContent, { result: 5 });
    for (const input of [
      { direction: 'client_to_server' as const, kind: 'request' as const, message: request },
      { direction: 'server_to_client' as const, kind: 'response' as const, message: served, request, at: 'to' as const },
      { direction: 'server_to_client' as const, kind: 'response' as const, message: answered.message, request, at: 'from' as const },
    ]) {
      assert.equal(roundTrip(chain, input).outcome, 'exact', JSON.stringify(input));
    }
    const listed = backwardResponse(chain, { jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'add', inputSchema: { type: 'object', properties: { x: {}, y: {} }, required: ['x', 'y'] } }] } }, forwardRequest(chain, { jsonrpc: '2.0', id: 2, method: 'tools/list' }));
    assert.deepEqual((listed.message.result as { tools: { inputSchema: unknown }[] }).tools[0]!.inputSchema, { type: 'object', properties: { a: {}, b: {} }, required: ['a', 'b'] });
  });

  test('a module that is not a transform is refused with the file and the reason', () => {
    assert.throws(() => checkDefinition('transforms/x.ts', { from: '1.0', to: '2.0.0', description: 'd', requestForward: () => ({}) }), (err: Error) => err instanceof TransformLoadError && /transforms\/x\.ts: not a transform \(from: an x\.y\.z version\)/.test(err.message));
    assert.throws(() => checkDefinition('transforms/y.ts', { from: '1.0.0', to: '2.0.0', description: 'd' }), /declares nothing/);
    assert.throws(() => checkDefinition('transforms/z.ts', { from: '1.0.0', to: '2.0.0', description: 'd', requestForward: () => ({}), extra: 1 }), /Unrecognized key/);
  });
});
