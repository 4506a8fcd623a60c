/**
 * Property-based fuzzing of the gateway's JSON-RPC rules (core/routing.ts): whatever bytes a client
 * sends, the parser answers with messages or with a JSON-RPC error the gateway can send as is, and
 * a valid message comes out exactly as it went in (`$` and dotted keys included).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { classifyMessage, INVALID_REQUEST, isClassified, PARSE_ERROR, parseJsonRpcBody } from '../../core/routing.ts';

const RUNS = 2_000;

/** Keys a JSON-RPC payload really carries: JSON Schema's `$schema`, `_meta`'s dotted names, and anything else. */
const key = fc.oneof(
  fc.string(),
  fc.constantFrom('$schema', '$ref', '$', 'io.modelcontextprotocol/protocolVersion', 'a.b.c', '__proto__', 'constructor', ''),
  fc.string().map((s) => `$${s}`),
  fc.tuple(fc.string(), fc.string()).map(([a, b]) => `${a}.${b}`),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(), fc.array(tie('value')), tie('object')),
  object: fc.dictionary(key, tie('value')),
})) as { value: fc.Arbitrary<unknown>; object: fc.Arbitrary<Record<string, unknown>> };

const id = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const method = fc.oneof(fc.string({ minLength: 1 }), fc.constantFrom('tools/call', 'tools/list', 'initialize', 'notifications/initialized', 'server/discover'));
const request = fc.record({ jsonrpc: fc.constant('2.0'), id, method, params: json.object }, { requiredKeys: ['jsonrpc', 'id', 'method'] });
const notification = fc.record({ jsonrpc: fc.constant('2.0'), method, params: json.object }, { requiredKeys: ['jsonrpc', 'method'] });
const response = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id, result: json.value }),
  fc.record({ jsonrpc: fc.constant('2.0'), id: fc.oneof(id, fc.constant(null)), error: fc.record({ code: fc.integer(), message: fc.string(), data: json.value }, { requiredKeys: ['code', 'message'] }) }),
);
const message = fc.oneof(request, notification, response);

/** A refusal the gateway can send unchanged: JSON-RPC 2.0, a standard code, an id the client can match. */
function assertRefusal(parsed: ReturnType<typeof parseJsonRpcBody>): void {
  if (parsed.ok) return;
  assert.equal(parsed.httpStatus, 400);
  assert.equal(parsed.error.jsonrpc, '2.0');
  assert.ok([PARSE_ERROR, INVALID_REQUEST].includes(parsed.error.error.code), `code ${parsed.error.error.code}`);
  assert.ok(parsed.error.error.message.length > 0);
  const rid = parsed.error.id;
  assert.ok(rid === null || typeof rid === 'string' || (typeof rid === 'number' && Number.isFinite(rid)), `id ${String(rid)}`);
  assert.doesNotThrow(() => JSON.stringify(parsed.error));
}

let cases = 0;
const counted = <T>(arb: fc.Arbitrary<T>) => arb.map((v) => (cases++, v));

test('any bytes: messages, or a 400 with a JSON-RPC error, never a throw', () => {
  fc.assert(
    fc.property(counted(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.string({ unit: 'binary', maxLength: 512 }))), (body) => {
      assertRefusal(parseJsonRpcBody(body));
    }),
    { numRuns: RUNS },
  );
});

test('text that is not JSON is a parse error (-32700) with id null', () => {
  const notJson = fc.string({ unit: 'binary' }).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  });
  fc.assert(
    fc.property(counted(notJson), (body) => {
      const parsed = parseJsonRpcBody(body);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.deepEqual([parsed.error.error.code, parsed.error.id], [PARSE_ERROR, null]);
    }),
    { numRuns: RUNS },
  );
});

test('any JSON value: accepted only as JSON-RPC 2.0 objects, else -32600', () => {
  fc.assert(
    fc.property(counted(fc.oneof(json.value, fc.array(json.value, { maxLength: 4 }), fc.jsonValue())), (value) => {
      const parsed = parseJsonRpcBody(JSON.stringify(value));
      assertRefusal(parsed);
      if (!parsed.ok) assert.equal(parsed.error.error.code, INVALID_REQUEST);
      else for (const m of parsed.messages) assert.equal(m.jsonrpc, '2.0');
    }),
    { numRuns: RUNS },
  );
});

test('a valid message passes unchanged, $ and dotted keys included, and is classified by its shape', () => {
  fc.assert(
    fc.property(counted(message), (msg) => {
      const text = JSON.stringify(msg);
      const parsed = parseJsonRpcBody(Buffer.from(text));
      assert.ok(parsed.ok, `refused ${text.slice(0, 200)}: ${parsed.ok ? '' : parsed.error.error.message}`);
      assert.equal(JSON.stringify(parsed.messages[0]), text, 'nothing lost or reordered');
      const c = parsed.classified[0]!;
      const expected = 'method' in msg ? ('id' in msg ? 'request' : 'notification') : 'response';
      assert.equal(c.kind, expected);
      if ('id' in msg) assert.equal(c.id, JSON.parse(JSON.stringify(msg.id)), 'the id as sent (-0 is 0 in JSON)');
      assert.equal(c.initialize, expected === 'request' && (msg as { method?: string }).method === 'initialize');
    }),
    { numRuns: RUNS },
  );
});

test('batches: each item checked, the bad one named; initialize never inside one', () => {
  fc.assert(
    fc.property(counted(fc.tuple(fc.array(message, { minLength: 1, maxLength: 5 }), fc.nat(), json.value)), ([items, at, junk]) => {
      const good = parseJsonRpcBody(JSON.stringify(items));
      const hasInit = items.some((m) => 'id' in m && 'method' in m && m.method === 'initialize');
      assert.equal(good.ok, !hasInit);
      if (good.ok) assert.equal(good.messages.length, items.length);
      const spoiled = [...items];
      const index = at % (items.length + 1);
      if (!isClassified(classifyMessage(junk))) {
        spoiled.splice(index, 0, junk as never);
        const bad = parseJsonRpcBody(JSON.stringify(spoiled));
        assert.equal(bad.ok, false);
        if (!bad.ok) {
          assertRefusal(bad);
          assert.equal(bad.error.id, null, 'a batch error has no single id');
        }
      }
    }),
    { numRuns: RUNS / 2 },
  );
  assert.equal(parseJsonRpcBody('[]').ok, false);
});

test('10,000 levels of nesting in params: parsed, kept, no stack overflow', () => {
  const depth = 10_000;
  const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
  const parsed = parseJsonRpcBody(body);
  assert.ok(parsed.ok);
  let node: unknown = (parsed.messages[0]!.params as { arguments: { deep: unknown } }).arguments.deep;
  let levels = 0;
  while (Array.isArray(node) && node.length) (node = node[0]), levels++;
  assert.equal(levels, depth - 1);
  cases++;
});

test('cases run', (t) => {
  t.diagnostic(`fuzz-jsonrpc: ${cases} generated cases`);
  assert.equal(cases, RUNS * 4.5 + 1, 'every generator ran its full count');
});
