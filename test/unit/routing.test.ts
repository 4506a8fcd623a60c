import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  batchesAllowed,
  classifyMessage,
  INVALID_REQUEST,
  keyedDraw,
  PARSE_ERROR,
  parseJsonRpcBody,
  pickInstance,
  pickVersion,
  requestIds,
  routableVersions,
  routingWeights,
  weightListOf,
  type RoutingView,
} from '../../core/routing.ts';

/** rand() values spread evenly over [0, 1): n picks then hit each version in exact proportion. */
function evenRands(n: number): (() => number)[] {
  return Array.from({ length: n }, (_, i) => () => (i + 0.5) / n);
}

function shares(routing: RoutingView, n: number, opts?: Parameters<typeof pickVersion>[2]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const rand of evenRands(n)) {
    const v = pickVersion(routing, rand, opts) ?? 'none';
    counts[v] = (counts[v] ?? 0) + 1;
  }
  return counts;
}

describe('pickVersion', () => {
  const canary: RoutingView = { stable: '1.0.0', weights: { '1.0.0': 90, '1.1.0': 10 }, pulled: [] };

  test('splits by weight, whatever the weights sum to', () => {
    assert.deepEqual(shares(canary, 1000), { '1.0.0': 900, '1.1.0': 100 });
    assert.deepEqual(shares({ weights: { a: 1, b: 3 }, pulled: [] }, 400), { a: 100, b: 300 });
  });

  test('the same rand gives the same version whatever the key order of the document', () => {
    const reordered: RoutingView = { stable: '1.0.0', weights: { '1.1.0': 10, '1.0.0': 90 }, pulled: [] };
    for (const rand of evenRands(50)) assert.equal(pickVersion(canary, rand), pickVersion(reordered, rand));
  });

  test('rand() at the edges stays inside the candidates; the stable range comes last', () => {
    assert.equal(pickVersion(canary, () => 0), '1.1.0');
    assert.equal(pickVersion(canary, () => 0.9999999999999999), '1.0.0');
  });

  test('weight 0, negative, NaN and pulled versions get no new sessions', () => {
    const routing: RoutingView = { stable: '1.0.0', weights: { '1.0.0': 50, '1.1.0': 0, '1.2.0': -5, '1.3.0': Number.NaN, '1.4.0': 50 }, pulled: ['1.4.0'] };
    assert.deepEqual(shares(routing, 100), { '1.0.0': 100 });
  });

  test('an excluded (breaker open) canary sends everything to the others', () => {
    assert.deepEqual(shares(canary, 100, { excluded: new Set(['1.1.0']) }), { '1.0.0': 100 });
  });

  test('falls back to stable when no weighted version is left', () => {
    const routing: RoutingView = { stable: '1.0.0', weights: { '1.1.0': 100 }, pulled: [] };
    assert.deepEqual(shares(routing, 10, { excluded: new Set(['1.1.0']) }), { '1.0.0': 10 });
    assert.deepEqual(shares({ stable: '1.0.0', weights: {}, pulled: [] }, 10), { '1.0.0': 10 });
  });

  test('with no fallback left, an excluded version is still returned so that it can answer with errors', () => {
    const only: RoutingView = { weights: { '1.0.0': 100 }, pulled: [] };
    assert.equal(pickVersion(only, () => 0.5, { excluded: new Set(['1.0.0']) }), '1.0.0');
    const stableOpen: RoutingView = { stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [] };
    assert.equal(pickVersion(stableOpen, () => 0.5, { excluded: new Set(['1.0.0']) }), '1.0.0');
  });

  test('undefined when nothing is routable', () => {
    assert.equal(pickVersion({ weights: {}, pulled: [] }, () => 0.5), undefined);
    assert.equal(pickVersion({ stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: ['1.0.0'] }, () => 0.5), undefined);
  });

  test('forced: any known version that is not pulled, even at weight 0', () => {
    const routing: RoutingView = { stable: '1.0.0', weights: { '1.0.0': 100, '2.0.0': 0, '3.0.0': 5 }, pulled: ['3.0.0'] };
    assert.equal(pickVersion(routing, () => 0.5, { forced: '2.0.0' }), '2.0.0');
    assert.equal(pickVersion(routing, () => 0.5, { forced: '3.0.0' }), undefined);
    assert.equal(pickVersion(routing, () => 0.5, { forced: '9.9.9' }), undefined);
  });

  test('routableVersions lists what could be picked', () => {
    assert.deepEqual(routableVersions({ stable: '0.9.0', weights: { '1.0.0': 1, '1.1.0': 0, '1.2.0': 3 }, pulled: ['1.2.0'] }), ['0.9.0', '1.0.0']);
  });
});

describe('pickInstance', () => {
  const inst = (instanceId: string, state = 'ready') => ({ instanceId, state });

  test('round robin over ready instances in instanceId order', () => {
    const pool = [inst('c'), inst('a'), inst('b', 'starting'), inst('d')];
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((t) => pickInstance(pool, t)?.instanceId), ['a', 'c', 'd', 'a', 'c', 'd']);
  });

  test('undefined when none is ready; any integer turn works', () => {
    assert.equal(pickInstance([inst('a', 'draining'), inst('b', 'failed')], 0), undefined);
    assert.equal(pickInstance([inst('a'), inst('b')], -1)?.instanceId, 'b');
  });
});

describe('JSON-RPC classification', () => {
  test('requests, notifications and responses', () => {
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }), { kind: 'request', method: 'initialize', id: 1, initialize: true });
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', id: 'x', method: 'tools/list' }), { kind: 'request', method: 'tools/list', id: 'x', initialize: false });
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', method: 'notifications/initialized' }), { kind: 'notification', method: 'notifications/initialized', initialize: false });
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', id: 3, result: {} }), { kind: 'response', id: 3, initialize: false });
    assert.deepEqual(classifyMessage({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'x' } }), { kind: 'response', id: null, initialize: false });
  });

  test('invalid messages say why, keeping a usable id', () => {
    const cases: [unknown, RegExp, string | number | null][] = [
      [42, /object/, null],
      [[1], /object/, null],
      [{ id: 1, method: 'x' }, /jsonrpc/, 1],
      [{ jsonrpc: '1.0', id: 1, method: 'x' }, /jsonrpc/, 1],
      [{ jsonrpc: '2.0', id: 1, method: 7 }, /method/, 1],
      [{ jsonrpc: '2.0', id: null, method: 'x' }, /request id/, null],
      [{ jsonrpc: '2.0', id: 1, method: 'x', params: [1] }, /params/, 1],
      [{ jsonrpc: '2.0', id: 1 }, /exactly one/, 1],
      [{ jsonrpc: '2.0', id: 1, result: 1, error: { code: 1, message: '' } }, /exactly one/, 1],
      [{ jsonrpc: '2.0', id: 1, error: { code: 'x', message: '' } }, /integer code/, 1],
      [{ jsonrpc: '2.0', result: {} }, /response id/, null],
    ];
    for (const [msg, why, id] of cases) {
      const c = classifyMessage(msg);
      assert.ok('invalid' in c, JSON.stringify(msg));
      assert.match(c.invalid, why);
      assert.equal(c.id, id);
    }
  });
});

describe('parseJsonRpcBody', () => {
  test('malformed JSON is a parse error', () => {
    const r = parseJsonRpcBody('{"jsonrpc": "2.0", ');
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error.error.code === PARSE_ERROR && r.error.id === null && r.httpStatus === 400);
  });

  test('invalid JSON-RPC is an invalid request with the id when there is one', () => {
    const r = parseJsonRpcBody(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'x', params: 'no' }));
    assert.ok(!r.ok && r.error.error.code === INVALID_REQUEST && r.error.id === 7);
    const empty = parseJsonRpcBody('[]');
    assert.ok(!empty.ok && empty.error.error.code === INVALID_REQUEST);
    const badItem = parseJsonRpcBody(JSON.stringify([{ jsonrpc: '2.0', method: 'a' }, { nope: 1 }]));
    assert.ok(!badItem.ok && /batch item 1/.test(badItem.error.error.message) && badItem.error.id === null);
  });

  test('single messages and batches; initialize never in a batch', () => {
    const single = parseJsonRpcBody(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })));
    assert.ok(single.ok && !single.batch && single.classified[0]!.initialize);
    const batch = parseJsonRpcBody(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'a' }, { jsonrpc: '2.0', method: 'b' }]));
    assert.ok(batch.ok && batch.batch && batch.messages.length === 2);
    assert.deepEqual(batch.ok && requestIds(batch.classified), [1]);
    const withInit = parseJsonRpcBody(JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'initialize' }]));
    assert.ok(!withInit.ok && withInit.error.error.code === INVALID_REQUEST);
  });

  test('batches: allowed before 2025-06-18 and when no version is known', () => {
    assert.equal(batchesAllowed(undefined), true);
    assert.equal(batchesAllowed('2024-11-05'), true);
    assert.equal(batchesAllowed('2025-03-26'), true);
    assert.equal(batchesAllowed('2025-06-18'), false);
    assert.equal(batchesAllowed('2025-11-25'), false);
  });
});

test('routingWeights reads the list form (FerretDB cannot store dotted keys) and the map form', () => {
  const list = weightListOf({ '1.1.0': 10, '1.0.0': 90 });
  assert.deepEqual(list, [
    { version: '1.0.0', weight: 90 },
    { version: '1.1.0', weight: 10 },
  ]);
  assert.deepEqual(routingWeights({ weights: {}, weightList: list }), { '1.0.0': 90, '1.1.0': 10 });
  assert.deepEqual(routingWeights({ weights: { '1.0.0': 100 } }), { '1.0.0': 100 });
  assert.deepEqual(routingWeights({ weights: { ignored: 1 }, weightList: [] }), {});
});

describe('keyed picks (client-consistent canary)', () => {
  const keyed = (routing: RoutingView, service: string, key: string, excluded?: Set<string>) => {
    const { point } = keyedDraw(service, key);
    return pickVersion(routing, () => point, excluded ? { excluded } : {});
  };
  const step = (canaryWeight: number, pulled: string[] = []): RoutingView => ({ stable: '1.0.0', weights: { '1.0.0': 100 - canaryWeight, '2.0.0': canaryWeight }, pulled });

  test('the same key always draws the same point, in [0, 1); another service draws anew', () => {
    const a = keyedDraw('svc', 'client:alice');
    assert.deepEqual(keyedDraw('svc', 'client:alice'), a);
    assert.ok(a.point >= 0 && a.point < 1 && Number.isInteger(a.turn));
    assert.notDeepEqual(keyedDraw('other', 'client:alice'), a);
  });

  test('raising the canary only adds clients to it (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (service, key, a, b) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        if (keyed(step(low), service, key) === '2.0.0') assert.equal(keyed(step(high), service, key), '2.0.0');
      }),
      { numRuns: 2000 },
    );
  });

  test('a ramp 10 → 25 → 50 → 100: the canary set grows, in proportion; a pulled canary sends all its clients to stable', () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `client:${i}`);
    let before = new Set<string>();
    for (const w of [10, 25, 50, 100]) {
      const on = new Set(keys.filter((k) => keyed(step(w), 'svc', k) === '2.0.0'));
      for (const k of before) assert.ok(on.has(k), `${k} left the canary at ${w}%`);
      // 4000 uniform draws: the share stays within a few points of the weight.
      assert.ok(Math.abs(on.size / keys.length - w / 100) < 0.03, `${on.size} of ${keys.length} at ${w}%`);
      before = on;
    }
    assert.ok(keys.every((k) => keyed(step(25, ['2.0.0']), 'svc', k) === '1.0.0'));
  });

  test('a canary excluded (breaker open) sends its clients to stable, deterministically', () => {
    const excluded = new Set(['2.0.0']);
    for (let i = 0; i < 200; i++) assert.equal(keyed(step(50), 'svc', `k${i}`, excluded), '1.0.0');
  });
});
