import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileRedactPaths, DEFAULT_REDACT, redact, REDACTED } from '../../api/gateway/capture/redact.ts';
import { capText, messageKind, shapeMessage, utf8Prefix } from '../../api/gateway/capture/shape.ts';
import { jsonArrayItems } from '../../api/gateway/json-text.ts';
import type { ExchangeContext } from '../../api/gateway/traffic.ts';
import { capturedMessage, CapturedMessageError } from '../../core/documents.ts';
import { loadConfig } from '../../core/config.ts';

test('kinds: request has a method and an id, notification a method only, error an error, response the rest', () => {
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} }), 'request');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 'a', method: 'ping' }), 'request');
  assert.equal(messageKind({ jsonrpc: '2.0', method: 'notifications/initialized' }), 'notification');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, result: { content: [] } }), 'response');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, result: { isError: true } }), 'response', 'a failed tool is still a response');
  assert.equal(messageKind({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'nope' } }), 'error');
  assert.equal(messageKind({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse' } }), 'error');
});

test('redaction: the defaults always apply, key names match whatever their case, _ or -', () => {
  const paths = compileRedactPaths([]);
  const msg = {
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'login', arguments: { user: 'ann', Password: 'hunter2', API_KEY: 'k1', 'access-token': 't', nested: { password: 'kept' } } },
  };
  const before = structuredClone(msg);
  const out = redact(msg, paths);
  assert.deepEqual(out.params.arguments, { user: 'ann', Password: REDACTED, API_KEY: REDACTED, 'access-token': REDACTED, nested: { password: 'kept' } });
  assert.deepEqual(msg, before, 'the gateway may still forward the original');
  assert.equal(out.params.arguments.nested, msg.params.arguments.nested, 'untouched branches are shared, not copied');
  const clean = { jsonrpc: '2.0', id: 1, result: { ok: true } };
  assert.equal(redact(clean, paths), clean, 'nothing to redact: the same object');
  assert.ok(DEFAULT_REDACT.includes('params.arguments.password'));
});

test('redaction: a configured list adds to the defaults instead of replacing them (MCPSHIP_CAPTURE_REDACT)', () => {
  const { config } = loadConfig({ MCPSHIP_CAPTURE_REDACT: 'params.arguments.pin, result.structuredContent.SSN' }, '/');
  const paths = compileRedactPaths(config.gateway.capture.redact);
  const req = redact({ params: { arguments: { pin: 1234, password: 'pw', token: 'tk' } } }, paths);
  assert.deepEqual(req.params.arguments, { pin: REDACTED, password: REDACTED, token: REDACTED });
  const res = redact({ result: { structuredContent: { ssn: '078-05-1120', name: 'x' } } }, paths);
  assert.deepEqual(res.result.structuredContent, { ssn: REDACTED, name: 'x' });
});

test('redaction: non-string and object values, wildcards and array indexes', () => {
  const out = redact(
    {
      params: { arguments: { password: { hash: 'x', salt: 'y' }, token: 12345 } },
      result: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
    },
    compileRedactPaths(['result.content.*.text', 'params.*.missing']),
  );
  assert.deepEqual(out.params.arguments, { password: REDACTED, token: REDACTED });
  assert.deepEqual(out.result.content, [
    { type: 'text', text: REDACTED },
    { type: 'text', text: REDACTED },
  ]);
  assert.ok(Array.isArray(out.result.content), 'arrays stay arrays');
  const indexed = redact({ a: [{ k: 1 }, { k: 2 }] }, compileRedactPaths(['a.1.k'], []));
  assert.deepEqual(indexed, { a: [{ k: 1 }, { k: REDACTED }] });
  assert.equal(compileRedactPaths(['', 'a..b'], []).children.get('a')?.children.get('b')?.leaf, true);
});

test('a cut text never splits a multi-byte character', () => {
  const text = 'ab' + 'é'.repeat(10) + '😀';
  for (let max = 0; max <= Buffer.byteLength(text); max++) {
    const cut = utf8Prefix(text, max);
    assert.ok(Buffer.byteLength(cut) <= max, `fits ${max}`);
    assert.ok(text.startsWith(cut), `prefix at ${max}`);
    assert.ok(!cut.includes('\uFFFD'));
  }
  assert.equal(utf8Prefix(text, 3), 'ab', 'the first é needs bytes 3 and 4');
  assert.equal(utf8Prefix(text, 4), 'abé');
  assert.deepEqual(capText('{"a":1}', 256), { raw: '{"a":1}', truncated: false });
  const capped = capText(JSON.stringify({ s: 'é'.repeat(500) }), 257);
  assert.equal(capped.truncated, true);
  assert.ok(Buffer.byteLength(capped.raw) <= 257);
});

const ctx = (extra: Partial<ExchangeContext> = {}): ExchangeContext => ({ service: 's', version: '1.0.0', instanceId: 'i', startedAt: 0, ...extra });
const opts = { redact: compileRedactPaths([]), maxPayloadBytes: 1024 };

test('a shaped document keeps the exact text and extracts the queried fields beside it', () => {
  // Key order, spacing and number spelling as a non-JS client might send them: kept byte for byte.
  const raw = '{ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1.0, "b": 2E0}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "$x.y": 1}} }';
  const msg = JSON.parse(raw) as Record<string, unknown>;
  const doc = shapeMessage({ ctx: ctx({ sessionId: 'sess' }), direction: 'client_to_server', msg, transport: 'json', size: Buffer.byteLength(raw), raw, at: new Date(0) }, opts);
  assert.equal(doc.raw, raw);
  assert.deepEqual(
    { kind: doc.kind, method: doc.method, rpcId: doc.rpcId, toolName: doc.toolName, protocolRevision: doc.protocolRevision, sessionId: doc.sessionId, redacted: doc.redacted, truncated: doc.truncated, size: doc.size },
    { kind: 'request', method: 'tools/call', rpcId: 5, toolName: 'add', protocolRevision: '2026-07-28', sessionId: 'sess', redacted: false, truncated: false, size: Buffer.byteLength(raw) },
  );
  assert.deepEqual(capturedMessage(doc), msg);

  const res = shapeMessage(
    { ctx: ctx({ protocolRevision: '2025-11-25', clientKey: 'client:a' }), direction: 'server_to_client', msg: { jsonrpc: '2.0', id: 5, result: { isError: true, content: [] } }, transport: 'sse', size: 10, at: new Date(0), toolName: 'add', latencyMs: 3 },
    opts,
  );
  assert.deepEqual(
    { kind: res.kind, isError: res.isError, toolName: res.toolName, protocolRevision: res.protocolRevision, clientKey: res.clientKey, latencyMs: res.latencyMs, raw: res.raw },
    { kind: 'response', isError: true, toolName: 'add', protocolRevision: '2025-11-25', clientKey: 'client:a', latencyMs: 3, raw: '{"jsonrpc":"2.0","id":5,"result":{"isError":true,"content":[]}}' },
  );
});

test('a redacted message is stored re-serialised and marked; a long one cut and marked; neither reads back whole by accident', () => {
  const raw = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"password":"hunter2"}}}';
  const doc = shapeMessage({ ctx: ctx(), direction: 'client_to_server', msg: JSON.parse(raw) as Record<string, unknown>, transport: 'json', size: raw.length, raw, at: new Date(0) }, opts);
  assert.equal(doc.redacted, true);
  assert.ok(!doc.raw.includes('hunter2'));
  assert.deepEqual((capturedMessage(doc).params as { arguments: unknown }).arguments, { password: REDACTED });

  const long = JSON.stringify({ jsonrpc: '2.0', id: 2, result: { text: 'x'.repeat(2_000) } });
  const cut = shapeMessage({ ctx: ctx(), direction: 'server_to_client', msg: JSON.parse(long) as Record<string, unknown>, transport: 'json', size: long.length, raw: long, at: new Date(0) }, opts);
  assert.equal(cut.truncated, true);
  assert.equal(Buffer.byteLength(cut.raw), 1024);
  assert.ok(long.startsWith(cut.raw));
  assert.equal(cut.size, long.length, 'size is the wire size, not the stored one');
  assert.throws(() => capturedMessage(cut), CapturedMessageError);
});

test('the items of a JSON array keep their exact text, strings with brackets and deep nesting included', () => {
  const text = ' [ {"a":"x,]\\"}"} ,\n[1, [2]], 3 ,"s" , null]';
  assert.deepEqual(jsonArrayItems(text), ['{"a":"x,]\\"}"}', '[1, [2]]', '3', '"s"', 'null']);
  assert.deepEqual(jsonArrayItems('[]'), []);
  const deep = '['.repeat(10_000) + ']'.repeat(10_000);
  assert.deepEqual(jsonArrayItems(`[${deep}, {"id":1}]`), [deep, '{"id":1}']);
});
