import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { capJsonText, capTtl, TtlCapper, type TtlCapOptions } from '../../api/gateway/cache-hints.ts';

const list = (id: number, ttlMs: unknown) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'a', inputSchema: { $schema: 'x', type: 'object' } }], ttlMs, cacheScope: 'public' } });

/** The capper's output for the chunks, fed one by one. */
async function run(chunks: Buffer[], opts: Partial<TtlCapOptions> & Pick<TtlCapOptions, 'transport'>): Promise<string> {
  const capper = new TtlCapper({ ids: new Set([1, 2]), capMs: 5_000, maxBytes: 1 << 20, ...opts });
  return (await buffer(Readable.from(chunks).pipe(capper))).toString('utf8');
}

const splitAt = (text: string, cuts: number[]): Buffer[] => {
  const bytes = Buffer.from(text);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
};

describe('capTtl', () => {
  test('lowers ttlMs above the cap, leaves the rest as it is', () => {
    assert.deepEqual(capTtl(list(1, 60_000), 5_000), list(1, 5_000));
    for (const untouched of [list(1, 5_000), list(1, 0), list(1, 'soon'), { jsonrpc: '2.0', id: 1, result: { tools: [] } }, { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'x' } }, null, [1]]) {
      assert.equal(capTtl(untouched, 5_000), undefined);
    }
  });

  test('capJsonText: only the answers to the given ids; undefined when nothing changed', () => {
    assert.equal(capJsonText(JSON.stringify(list(9, 60_000)), new Set([1]), 5_000), undefined);
    assert.deepEqual(JSON.parse(capJsonText(JSON.stringify([list(1, 60_000), list(9, 60_000)]), new Set([1]), 5_000)!), [list(1, 5_000), list(9, 60_000)]);
    assert.equal(capJsonText('not json', new Set([1]), 5_000), undefined);
  });
});

describe('TtlCapper', () => {
  test('JSON: capped once complete; an uncapped body passes byte for byte', async () => {
    const body = JSON.stringify(list(1, 60_000));
    assert.deepEqual(JSON.parse(await run(splitAt(body, [3, 40]), { transport: 'json' })), list(1, 5_000));
    const spaced = JSON.stringify(list(1, 1_000), null, 2);
    assert.equal(await run([Buffer.from(spaced)], { transport: 'json' }), spaced);
  });

  test('JSON: a body over maxBytes passes unchanged', async () => {
    const body = JSON.stringify(list(1, 60_000));
    assert.equal(await run(splitAt(body, [10]), { transport: 'json', maxBytes: 20 }), body);
  });

  const event = (msg: unknown, eol = '\n') => `event: message${eol}id: 7${eol}data: ${JSON.stringify(msg)}${eol}${eol}`;

  test('SSE: the same output whatever the chunking (property), only cacheable answers rewritten', async () => {
    const stream = `: ping\n\n${event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } })}${event(list(1, 60_000), '\r\n')}${event(list(3, 60_000), '\r')}data: {"jsonrpc":"2.0",\ndata: "id":2,"result":{"ttlMs":90000}}\n\nevent: other\ndata: ${JSON.stringify(list(2, 60_000))}\n\n`;
    const whole = await run([Buffer.from(stream)], { transport: 'sse' });
    assert.equal(
      whole,
      `: ping\n\n${event({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } })}event: message\r\nid: 7\r\ndata: ${JSON.stringify(list(1, 5_000))}\n\r\n${event(list(3, 60_000), '\r')}data: {"jsonrpc":"2.0","id":2,"result":{"ttlMs":5000}}\n\nevent: other\ndata: ${JSON.stringify(list(2, 60_000))}\n\n`,
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 8 }), async (cuts) => {
        assert.equal(await run(splitAt(stream, cuts), { transport: 'sse' }), whole);
      }),
      { numRuns: 300 },
    );
  });

  test('SSE: lines that are not data go out before the event ends (streaming kept)', async () => {
    const capper = new TtlCapper({ transport: 'sse', ids: new Set([1]), capMs: 5_000, maxBytes: 1 << 20 });
    const out: string[] = [];
    capper.on('data', (c: Buffer) => out.push(c.toString()));
    capper.write(Buffer.from(': keep-alive\nevent: message\ndata: {"jsonrpc":"2.0","id":1,'));
    await new Promise((r) => setImmediate(r));
    assert.equal(out.join(''), ': keep-alive\nevent: message\n');
    capper.end(Buffer.from('"result":{"ttlMs":60000}}\n\n'));
    await new Promise((r) => capper.once('end', r).resume());
    assert.equal(out.join(''), ': keep-alive\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"ttlMs":5000}}\n\n');
  });

  test('SSE: an event larger than maxBytes passes unchanged and is not held', async () => {
    const stream = event(list(1, 60_000));
    assert.equal(await run(splitAt(stream, [5, 30, 60]), { transport: 'sse', maxBytes: 40 }), stream);
  });
});
