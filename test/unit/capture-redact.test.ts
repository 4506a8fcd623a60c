import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capPayload, compileRedactPaths, messageKind, redact, REDACTED, utf8Prefix } from '../../api/gateway/capture.ts';

test('kinds: request has a method and an id, notification a method only, error an error, response the rest', () => {
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }), 'request');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 'a', method: 'ping' }), 'request');
  assert.equal(messageKind({ jsonrpc: '2.0', method: 'notifications/initialized' }), 'notification');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, result: { content: [] } }), 'response');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, result: { isError: true } }), 'response', 'a failed tool is still a response');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope' } }), 'error');
  assert.equal(messageKind({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse' } }), 'error');
});

test('redaction blanks the configured paths and leaves the original message untouched', () => {
  const paths = compileRedactPaths(['params.arguments.password', 'params.arguments.token', 'result.secret']);
  const msg = {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'login', arguments: { user: 'ann', password: 'hunter2', nested: { password: 'kept' } } },
  };
  const before = structuredClone(msg);
  const out = redact(msg, paths);
  assert.deepEqual(out, {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'login', arguments: { user: 'ann', password: REDACTED, nested: { password: 'kept' } } },
  });
  assert.deepEqual(msg, before, 'the gateway may still forward the original');
  assert.equal(out.params.arguments.nested, msg.params.arguments.nested, 'untouched branches are shared, not copied');
  assert.equal(redact({ jsonrpc: '2.0', method: 'x' }, paths).method, 'x');
  const clean = { jsonrpc: '2.0', id: 1, result: { ok: true } };
  assert.equal(redact(clean, paths), clean, 'nothing to redact: the same object');
});

test('redaction: non-string and object values, wildcards and array indexes', () => {
  const out = redact(
    {
      params: { arguments: { password: { hash: 'x', salt: 'y' }, token: 12345 } },
      result: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
    },
    compileRedactPaths(['params.arguments.password', 'params.arguments.token', 'result.content.*.text', 'params.*.missing']),
  );
  assert.deepEqual(out.params.arguments, { password: REDACTED, token: REDACTED });
  assert.deepEqual(out.result.content, [
    { type: 'text', text: REDACTED },
    { type: 'text', text: REDACTED },
  ]);
  assert.ok(Array.isArray(out.result.content), 'arrays stay arrays');
  const indexed = redact({ a: [{ k: 1 }, { k: 2 }] }, compileRedactPaths(['a.1.k']));
  assert.deepEqual(indexed, { a: [{ k: 1 }, { k: REDACTED }] });
  assert.deepEqual(compileRedactPaths(['', 'a..b']), [['a', 'b']]);
});

test('payloads within the cap are kept as they are; larger ones become a marked JSON prefix', () => {
  const small = { jsonrpc: '2.0', id: 1, result: { text: 'hi' } };
  assert.deepEqual(capPayload(small, 256), { payload: small, truncated: false });
  assert.deepEqual(capPayload(small, 256, 40), { payload: small, truncated: false }, 'a small wire size skips serialising');
  const big = { jsonrpc: '2.0', id: 2, result: { text: 'x'.repeat(1_000) } };
  const capped = capPayload(big, 256, 1_050);
  assert.equal(capped.truncated, true);
  assert.equal(typeof capped.payload, 'string');
  assert.equal(Buffer.byteLength(capped.payload as string), 256);
  assert.ok(JSON.stringify(big).startsWith(capped.payload as string));
  // A wire size over the cap whose redacted JSON fits is not truncated.
  assert.deepEqual(capPayload(small, 256, 10_000), { payload: small, truncated: false });
});

test('a truncated payload never splits a multi-byte character', () => {
  const text = 'ab' + 'é'.repeat(10) + '😀';
  for (let max = 0; max <= Buffer.byteLength(text); max++) {
    const cut = utf8Prefix(text, max);
    assert.ok(Buffer.byteLength(cut) <= max, `fits ${max}`);
    assert.ok(text.startsWith(cut), `prefix at ${max}`);
    assert.ok(!cut.includes('\uFFFD'));
  }
  assert.equal(utf8Prefix(text, 3), 'ab', 'the first é needs bytes 3 and 4');
  assert.equal(utf8Prefix(text, 4), 'abé');
  const capped = capPayload({ s: 'é'.repeat(500) }, 257);
  assert.equal(capped.truncated, true);
  assert.ok(Buffer.byteLength(capped.payload as string) <= 257);
});
