import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NoiseModel, pathShape } from '../../compat/noise.ts';
import { comparable, diffJson, failureOf } from '../../compat/replay-diff.ts';
import { gateVerdict } from '../../compat/replay-gate.ts';
import { toolPolicy } from '../../compat/replay-policy.ts';
import { cellStatus } from '../../compat/matrix.ts';
import { replayCells, summarise } from '../../compat/replay-report.ts';
import { planReplay, type SelectableDoc } from '../../compat/replay-select.ts';
import { replaySchemaDiff } from '../../compat/replay-schema.ts';
import { PinChains } from '../../compat/pin-chains.ts';
import { pinnedRequest } from '../../activities/replay-pin.ts';
import type { ReplayItem } from '../../compat/replay-types.ts';
import type { Difference, Json, LoadedTransform } from '../../compat/types.ts';

const changed = (path: string): Difference => ({ kind: 'value_changed', path, before: 1, after: 2 });

test('JSON inside content[].text is compared as JSON, the JSON-RPC id never', () => {
  const a = comparable({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: '{"sum":3,"at":"10:00"}' }] } });
  const b = comparable({ jsonrpc: '2.0', id: 'replay-9', result: { content: [{ type: 'text', text: '{"at":"10:01","sum":3}' }] } });
  assert.deepEqual(diffJson(a, b), [{ kind: 'value_changed', path: '/result/content/0/text/at', before: '10:00', after: '10:01' }]);
  // Plain text stays a string; a change is one change of the whole text.
  const plain = diffJson(comparable({ result: { content: [{ type: 'text', text: 'hello' }] } }), comparable({ result: { content: [{ type: 'text', text: 'hullo' }] } }));
  assert.deepEqual(plain.map((d) => d.path), ['/result/content/0/text']);
  // A 2026-07-28 result's serverInfo (the version that answered) is envelope, not answer; other _meta stays.
  const meta = (version: string, extra = {}) => comparable({ result: { content: [], _meta: { 'io.modelcontextprotocol/serverInfo': { name: 's', version }, ...extra } } });
  assert.deepEqual(diffJson(meta('1.0.0'), meta('1.0.1')), []);
  assert.deepEqual(diffJson(meta('1.0.0', { trace: 1 }), meta('1.0.1', { trace: 2 })).map((d) => d.path), ['/result/_meta/trace']);
  // Keys with "/" and "~" are escaped as RFC 6901 says.
  assert.deepEqual(diffJson({ 'a/b': 1, 'c~d': 1 } as Json, { 'a/b': 2, 'c~d': 1, e: 0 } as Json).map((d) => [d.kind, d.path]), [['value_changed', '/a~1b'], ['field_added', '/e']]);
});

test('diffJson finds no difference exactly when the values are equal', () => {
  fc.assert(
    fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
      const x = { v: a } as Json;
      const y = { v: b } as Json;
      assert.equal(diffJson(x, y).length === 0, JSON.stringify(x) === JSON.stringify(y) || isDeepEqual(a, b));
      assert.equal(diffJson(x, x).length, 0);
    }),
  );
});

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

test('failures a client sees: JSON-RPC errors, tool errors, no answer', () => {
  assert.match(failureOf({ error: { code: -32602, message: 'bad params' } })!, /-32602: bad params/);
  assert.match(failureOf({ result: { isError: true, content: [{ type: 'text', text: 'regression' }] } })!, /tool error: regression/);
  assert.equal(failureOf(undefined), 'no answer');
  assert.equal(failureOf({ result: { content: [] } }), undefined);
});

test("noise (Diffy's rule): a path stable also changes is noise; a path only the candidate changes is reported", () => {
  const model = new NoiseModel({ absolute: 0.01, relative: 0.2 });
  for (let i = 0; i < 100; i++) {
    // The timestamp differs everywhere, stable vs stable too; the sum differs for the candidate only, 1 in 10.
    model.observe('add', i % 10 === 0 ? [changed('/result/at'), changed('/result/sum')] : [changed('/result/at')], [changed('/result/at')]);
  }
  assert.equal(model.significant('add', '/result/at'), false);
  assert.equal(model.significant('add', '/result/sum'), true);
  // Noise is per tool: the same path on another tool with no stable noise is significant.
  model.observe('echo', [changed('/result/at')], []);
  assert.equal(model.significant('echo', '/result/at'), true);
  // Clearly more often than noise: 90% candidate vs 40% noise is reported, 45% vs 40% is not.
  const m2 = new NoiseModel({ absolute: 0.01, relative: 0.2 });
  for (let i = 0; i < 100; i++) m2.observe('t', i < 90 ? [changed('/x')] : [], i < 40 ? [changed('/x')] : []);
  assert.equal(m2.significant('t', '/x'), true);
  const m3 = new NoiseModel({ absolute: 0.01, relative: 0.2 });
  for (let i = 0; i < 100; i++) m3.observe('t', i < 45 ? [changed('/x')] : [], i < 40 ? [changed('/x')] : []);
  assert.equal(m3.significant('t', '/x'), false);
  assert.equal(pathShape('/result/content/12/text/items/3'), '/result/content/*/text/items/*');
});

const item = (index: number, over: Partial<ReplayItem>): ReplayItem => ({ index, method: 'tools/call', tool: 'add', messageId: `m${index}`, candidateDiffs: [], noiseDiffs: [], ...over });

test('each request gets one outcome; counts, top paths and matrix cells follow', () => {
  const items: ReplayItem[] = [
    ...Array.from({ length: 8 }, (_, i) => item(i, { candidateDiffs: [changed('/result/at')], noiseDiffs: [changed('/result/at')], clientName: 'a', protocolRevision: '2025-11-25', clientVersion: '1' })),
    item(8, { candidateDiffs: [changed('/result/at'), changed('/result/sum')], noiseDiffs: [changed('/result/at')] }),
    item(9, { broke: 'tool error: boom' }),
    item(10, { skipped: 'side-effect policy: destructiveHint', tool: 'drop' }),
    item(11, { method: 'resources/read', tool: undefined }),
  ];
  const s = summarise(items);
  assert.deepEqual(s.counts, { replayed: 12, equal: 1, noise: 8, differs: 1, breaks: 1, skipped: 1 });
  assert.deepEqual(s.perTool.drop, { replayed: 1, equal: 0, noise: 0, differs: 0, breaks: 0, skipped: 1 });
  assert.equal(s.perTool['resources/read']!.equal, 1);
  assert.deepEqual(s.topPaths.map((p) => p.path), ['/add (error)', '/result/sum']);
  assert.deepEqual(s.samples.map((x) => x.outcome), ['differs', 'breaks']);
  const cells = replayCells(s.classified, 'run-1', new Date(0));
  const addCell = cells.find((c) => c.column.kind === 'tool' && c.column.tool === 'add')!;
  assert.equal(addCell.status, 'breaks');
  assert.equal(addCell.counts.replayed, 10);
  const clientA = cells.find((c) => c.column.kind === 'client' && c.column.clientName === 'a')!;
  assert.equal(clientA.status, 'noise');
  assert.equal(cellStatus({ replayed: 2, equal: 0, noise: 0, differs: 0, breaks: 0, skipped: 2 }), 'skipped');
});

test('the gate: breaking or differing over the thresholds blocks; too few or no requests prove nothing', () => {
  const t = { maxBreakingShare: 0, maxDifferingShare: 0.1, minMessages: 5 };
  const counts = (o: Partial<Record<'equal' | 'noise' | 'differs' | 'breaks' | 'skipped', number>>) => {
    const c = { equal: 0, noise: 0, differs: 0, breaks: 0, skipped: 0, ...o };
    return { ...c, replayed: c.equal + c.noise + c.differs + c.breaks + c.skipped };
  };
  assert.equal(gateVerdict(counts({ equal: 19, breaks: 1 }), t).decision, 'blocked');
  assert.match(gateVerdict(counts({ equal: 19, breaks: 1 }), t).reasons[0]!, /1 of 20 replayed requests break/);
  assert.equal(gateVerdict(counts({ equal: 8, differs: 2 }), t).decision, 'blocked');
  assert.equal(gateVerdict(counts({ equal: 9, differs: 1, skipped: 50 }), t).decision, 'proven');
  assert.equal(gateVerdict(counts({ equal: 3 }), t).decision, 'unproven');
  assert.match(gateVerdict(counts({}), t).reasons[0]!, /no captured traffic/);
  assert.match(gateVerdict(counts({ skipped: 4 }), t).reasons[0]!, /all 4 captured requests were skipped/);
});

test('the gate: captured calls the candidate schemas reject block, even of tools that were not replayed', () => {
  const t = { maxBreakingShare: 0, maxDifferingShare: 0.1, minMessages: 5 };
  const before = [{ name: 'wipe', inputSchema: { type: 'object', properties: {} }, annotations: { destructiveHint: true } }];
  const after = [{ ...before[0]!, inputSchema: { type: 'object', properties: { confirm: { type: 'boolean' } }, required: ['confirm'] } }];
  const call = (id: number, args: Record<string, unknown>, versionAsked?: string): SelectableDoc => ({
    messageId: `m${id}`, raw: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'wipe', arguments: args } }), truncated: false,
    direction: 'client_to_server', kind: 'request', method: 'tools/call', rpcId: id, toolName: 'wipe', at: new Date(id), ...(versionAsked ? { versionAsked } : {}),
  });
  const docs = [call(1, {}), call(2, {}), call(3, { confirm: true }), call(4, {}, '0.9.0')];
  // A pinned 0.9.0 client's call is migrated by the candidate's chain, as the gateway would send it.
  const transforms: LoadedTransform[] = [
    { id: 'transforms/0.9-to-1.0.ts', from: '0.9.0', to: '1.0.0', description: 'confirm', requestForward: (m) => ({ ...m, params: { ...(m.params as object), arguments: { confirm: true } } }) },
    { id: 'transforms/1.0-to-1.1.ts', from: '1.0.0', to: '1.1.0', description: 'nothing' },
  ];
  const chains = new PinChains('s', '1.1.0', transforms);
  const schema = replaySchemaDiff({ service: 's', baseline: '1.0.0', candidate: '1.1.0', before, after, docs, selection: {}, chains });
  assert.deepEqual([schema.class, schema.capturedCalls, schema.rejectedCalls], ['breaking', 4, 2]);
  const skippedOnly = { replayed: 4, equal: 0, noise: 0, differs: 0, breaks: 0, skipped: 4 };
  const verdict = gateVerdict(skippedOnly, t, schema);
  assert.equal(verdict.decision, 'blocked');
  assert.match(verdict.reasons[0]!, /^schema: 2 of 4 captured calls would be rejected by 1\.1\.0 \(50\.0% > max 0\.0%\): wipe: new required input "confirm" \(2 of 4 calls\)/);
  assert.equal(gateVerdict(skippedOnly, { ...t, maxBreakingShare: 0.5 }, schema).decision, 'unproven', 'a share within the threshold passes');
  assert.equal(replaySchemaDiff({ service: 's', baseline: '1.0.0', candidate: '1.1.0', before, after, docs, selection: { tools: ['other'] }, chains }).capturedCalls, 0, 'the replay filters apply');
});

test('side-effect policy: read-only and idempotent tools replay; destructive and unannotated only when allowed', () => {
  const stable = [
    { name: 'get', inputSchema: {}, annotations: { readOnlyHint: true } },
    { name: 'put', inputSchema: {}, annotations: { idempotentHint: true } },
    { name: 'drop', inputSchema: {}, annotations: { destructiveHint: true, idempotentHint: true } },
    { name: 'plain', inputSchema: {} },
  ];
  const candidate = [{ name: 'get', inputSchema: {}, annotations: { readOnlyHint: false, destructiveHint: true } }, ...stable.slice(1)];
  const policy = toolPolicy([stable, candidate], ['plain']);
  assert.equal(policy('put').replay, true);
  assert.equal(policy('drop').replay, false);
  assert.match(policy('drop').reason, /destructiveHint/);
  assert.equal(policy('get').replay, false, 'a tool the candidate made destructive is not replayed');
  assert.equal(policy('plain').replay, true);
  assert.equal(toolPolicy([stable], [])('plain').replay, false);
});

let seq = 0;
function doc(over: Partial<SelectableDoc> & { message: Record<string, unknown> }): SelectableDoc {
  const { message, ...rest } = over;
  const kind = 'method' in message ? ('id' in message ? 'request' : 'notification') : 'error' in message ? 'error' : 'response';
  return {
    messageId: `m${++seq}`,
    raw: JSON.stringify(message),
    truncated: false,
    direction: 'client_to_server',
    kind,
    ...(typeof message.method === 'string' ? { method: message.method } : {}),
    rpcId: (message.id ?? null) as string | number | null,
    at: new Date(seq),
    ...rest,
  };
}

const call = (id: number, tool: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: {} } });
const answer = (id: number) => ({ jsonrpc: '2.0', id, result: { content: [] } });

test('plan: sessions whole and in order, client answers to server requests kept, sessions without initialize left out', () => {
  const docs = [
    doc({ sessionId: 'old', message: call(7, 'add'), toolName: 'add' }), // began before the window
    doc({ sessionId: 's1', message: { jsonrpc: '2.0', id: 0, method: 'initialize', params: {} } }),
    doc({ sessionId: 's1', direction: 'server_to_client', message: { jsonrpc: '2.0', id: 0, result: {} } }),
    doc({ sessionId: 's1', message: { jsonrpc: '2.0', method: 'notifications/initialized' } }),
    doc({ sessionId: 's1', message: call(1, 'ask'), toolName: 'ask' }),
    doc({ sessionId: 's1', direction: 'server_to_client', message: { jsonrpc: '2.0', id: 0, method: 'sampling/createMessage', params: {} } }),
    doc({ sessionId: 's1', message: { jsonrpc: '2.0', id: 0, result: { content: { type: 'text', text: 'yes' } } } }),
    doc({ sessionId: 's1', direction: 'server_to_client', message: answer(1), toolName: 'ask' }),
    doc({ sessionId: 's1', message: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } } }),
    doc({ sessionId: 's1', message: call(2, 'add'), toolName: 'add' }),
    doc({ sessionId: 's1', direction: 'server_to_client', message: answer(2), toolName: 'add' }),
  ];
  const plan = planReplay(docs, {}, 'seed');
  assert.equal(plan.units.length, 1);
  const [unit] = plan.units;
  assert.deepEqual(unit!.steps.map((s) => s.method), ['initialize', 'notifications/initialized', 'tools/call', 'tools/call']);
  assert.deepEqual(unit!.steps.map((s) => s.compared), [false, false, true, true]);
  assert.deepEqual(unit!.steps[2]!.answer, answer(1));
  assert.deepEqual(unit!.clientAnswers['sampling/createMessage'], [{ jsonrpc: '2.0', id: 0, result: { content: { type: 'text', text: 'yes' } } }]);
  assert.equal(plan.total, 2);
  // A tool filter compares only that tool's calls, the session still runs whole.
  const onlyAdd = planReplay(docs, { tools: ['add'] }, 'seed');
  assert.deepEqual(onlyAdd.units[0]!.steps.map((s) => s.compared), [false, false, false, true]);
});

test('plan: stateless requests stand alone, answers matched by client key and id; the sample is whole units, the same for a seed', () => {
  const docs = [];
  for (let i = 0; i < 40; i++) {
    const clientKey = `k${i % 4}`;
    docs.push(doc({ clientKey, message: call(1, 'add'), toolName: 'add', clientName: i % 2 ? 'odd' : 'even' }));
    docs.push(doc({ clientKey, direction: 'server_to_client', message: { ...answer(1), result: { content: [], n: i } } }));
  }
  const all = planReplay(docs, {}, 'x');
  assert.equal(all.units.length, 40);
  assert.ok(all.units.every((u, i) => (u.steps[0]!.answer!.result as { n: number }).n === i), 'each answer with its own request');
  const a = planReplay(docs, { sampleSize: 10 }, 'seed-1');
  const b = planReplay(docs, { sampleSize: 10 }, 'seed-1');
  const c = planReplay(docs, { sampleSize: 10 }, 'seed-2');
  assert.equal(a.total, 10);
  assert.deepEqual(a.units.map((u) => u.key), b.units.map((u) => u.key));
  assert.notDeepEqual(a.units.map((u) => u.key), c.units.map((u) => u.key));
  assert.equal(planReplay(docs, { clients: ['odd'] }, 'x').total, 20);
});

test('plan: a capture cut at the payload cap is planned as unreadable, not dropped', () => {
  const d = doc({ message: call(1, 'add'), toolName: 'add' });
  const plan = planReplay([{ ...d, truncated: true }], {}, 's');
  assert.match(plan.units[0]!.steps[0]!.unreadable!, /stored cut/);
});

test("a pinned client's request is replayed as the gateway serves it: forward through the version's chain, the answer back", () => {
  const transforms: LoadedTransform[] = [
    {
      id: 'transforms/1.0-to-2.0.ts',
      from: '1.0.0',
      to: '2.0.0',
      description: 'a renamed x',
      requestForward: (m) => {
        const args = (m.params as { arguments: Record<string, unknown> }).arguments;
        if ('boom' in args) throw new Error('cannot migrate boom');
        return { ...m, params: { ...(m.params as object), arguments: { x: args.a } } };
      },
      responseBackward: (m) => ({ ...m, result: { sum: (m.result as { total: number }).total } }),
    },
  ];
  const chains = new PinChains('s', '2.0.0', transforms);
  const request = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'add', arguments: { a: 1 } } };
  const pinned = pinnedRequest(chains, '1.0.0', request);
  assert.deepEqual(pinned.message, { ...request, params: { name: 'add', arguments: { x: 1 } } });
  assert.deepEqual(pinned.back({ jsonrpc: '2.0', id: 7, result: { total: 3 } }), { jsonrpc: '2.0', id: 7, result: { sum: 3 } });
  assert.equal(pinnedRequest(chains, undefined, request).message, request, 'an unpinned request goes as captured');
  assert.equal(pinnedRequest(chains, '2.0.0', request).message, request, 'a pin of the version itself needs no transform');

  // A throwing transform answers with the gateway's error; nothing is sent.
  const thrown = pinnedRequest(chains, '1.0.0', { ...request, params: { name: 'add', arguments: { boom: 1 } } });
  assert.equal(thrown.message, undefined);
  assert.match(failureOf(thrown.answer)!, /-32603: Version pin 1\.0\.0: transform transforms\/1\.0-to-2\.0\.ts failed in requestForward: cannot migrate boom/);
  // Pins the version cannot serve are refused with the reason.
  assert.match(failureOf(pinnedRequest(chains, '3.0.0', request).answer)!, /-32600: .*version pin 3\.0\.0 cannot be served by 2\.0\.0/);
  assert.match(failureOf(pinnedRequest(chains, '0.5.0', request).answer)!, /no transform covers version 0\.5\.0/);
  assert.match(failureOf(pinnedRequest(new PinChains('s', '2.0.0', new Error('transforms/x.ts: does not load')), '1.0.0', request).answer)!, /does not load/);
});
