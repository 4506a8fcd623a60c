import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ResponseTap, SseParser } from '../../api/gateway/response-tap.ts';

const enc = (s: string) => Buffer.from(s, 'utf8');

describe('SseParser', () => {
  test('events complete at the blank line, whatever the chunking and line endings', () => {
    const stream = 'id: 1\nevent: message\ndata: {"a":1}\n\n: keep-alive comment\r\n\r\nretry: 500\ndata: line1\r\ndata:line2\r\r' + 'data: ✓\n\n';
    // Every split point, including inside CRLF and inside the multi-byte ✓.
    const bytes = enc(stream);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut)), ...p.end()];
      assert.deepEqual(
        events,
        [
          { event: 'message', data: '{"a":1}', id: '1' },
          { event: 'message', data: 'line1\nline2', id: '1' },
          { event: 'message', data: '✓', id: '1' },
        ],
        `cut at ${cut}`,
      );
    }
  });

  test('an event is reported as soon as its blank line arrives, not at the end of the stream', () => {
    const p = new SseParser();
    assert.deepEqual(p.push(enc('data: x\n')), []);
    assert.deepEqual(p.push(enc('\n')), [{ event: 'message', data: 'x' }]);
  });

  test('bounded: an over-long event (or a line that never ends) is skipped and counted; the next event parses', () => {
    for (const chunkSize of [1, 7, 64, 10_000]) {
      const p = new SseParser(100);
      const long = `data: ${'x'.repeat(150)}\r\ndata: more\r\n\r\n`;
      const endless = `data: ${'y'.repeat(500)}`;
      const text = `data: a\n\n${long}data: b\n\n${endless}\n\ndata: c\n\n`;
      const bytes = enc(text);
      const events = [];
      for (let i = 0; i < bytes.length; i += chunkSize) events.push(...p.push(bytes.subarray(i, i + chunkSize)));
      events.push(...p.end());
      assert.deepEqual(events.map((e) => e.data), ['a', 'b', 'c'], `chunks of ${chunkSize}`);
      assert.equal(p.skipped, 2, `chunks of ${chunkSize}`);
    }
  });

  test('an unfinished event at the end is dropped', () => {
    const p = new SseParser();
    p.push(enc('data: half'));
    assert.deepEqual(p.end(), []);
  });
});

describe('ResponseTap', () => {
  const collect = (contentType: string) => {
    const seen: { msg: Record<string, unknown>; transport: string; size: number }[] = [];
    const tap = ResponseTap.for(contentType, (msg, transport, size) => seen.push({ msg, transport, size }));
    return { tap: tap!, seen };
  };

  test('SSE: every message event, counting errors and isError results, noting answered ids', () => {
    const { tap, seen } = collect('text/event-stream; charset=utf-8');
    tap.write(enc('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n'));
    assert.equal(seen.length, 1, 'reported before the stream ends');
    tap.write(enc('event: other\ndata: {"jsonrpc":"2.0","id":9,"result":{}}\n\n'));
    tap.write(enc('data: {"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}\n\ndata: {"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"x"}}\n\ndata: not json\n\n'));
    tap.end();
    assert.deepEqual(seen.map((s) => s.msg.id ?? s.msg.method), ['notifications/progress', 1, 2]);
    assert.ok(seen.every((s) => s.transport === 'sse'));
    assert.equal(seen[1]!.size, Buffer.byteLength('{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}'));
    assert.equal(tap.toolErrors, 1);
    assert.equal(tap.rpcErrors, 1);
    assert.deepEqual([...tap.answered], [1, 2]);
  });

  test('JSON: the body once complete, batches item by item', () => {
    const { tap, seen } = collect('application/json');
    const body = JSON.stringify([{ jsonrpc: '2.0', id: 'a', result: {} }, { jsonrpc: '2.0', id: 'b', error: { code: -32601, message: 'nope' } }]);
    tap.write(enc(body.slice(0, 10)));
    assert.equal(seen.length, 0);
    tap.write(enc(body.slice(10)));
    tap.end();
    assert.deepEqual(seen.map((s) => s.msg.id), ['a', 'b']);
    assert.equal(tap.rpcErrors, 1);
    assert.deepEqual([...tap.answered], ['a', 'b']);
  });

  test('messages over the bound are not reported, and counted as skipped', () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(100) } });
    const small = JSON.stringify({ jsonrpc: '2.0', id: 2, result: {} });
    const seen: unknown[] = [];
    const sse = ResponseTap.for('text/event-stream', (msg) => seen.push(msg.id), 80)!;
    sse.write(enc(`data: ${big}\n\ndata: ${small}\n\n`));
    sse.end();
    // A copy: deepEqual is an assertion function and would narrow `seen` to number[].
    assert.deepEqual([...seen], [2]);
    assert.equal(sse.skipped, 1);
    const json = ResponseTap.for('application/json', (msg) => seen.push(msg.id), 80)!;
    json.write(enc(big));
    json.end();
    assert.deepEqual(seen, [2]);
    assert.equal(json.skipped, 1);
  });

  test('no tap for bodies that carry no JSON-RPC', () => {
    assert.equal(ResponseTap.for('text/plain', () => {}), undefined);
    assert.equal(ResponseTap.for(undefined, () => {}), undefined);
  });
});
