import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { calculate, createServer } from '../src/server.js';

describe('calculate', () => {
  it('does the four operations', () => {
    assert.deepEqual(calculate('add', 2, 3), { ok: true, value: 5 });
    assert.deepEqual(calculate('subtract', 2, 3), { ok: true, value: -1 });
    assert.deepEqual(calculate('multiply', 2.5, 4), { ok: true, value: 10 });
    assert.deepEqual(calculate('divide', 7, 2), { ok: true, value: 3.5 });
  });

  it('refuses division by zero and non-finite results', () => {
    assert.deepEqual(calculate('divide', 1, 0), { ok: false, error: 'Division by zero' });
    assert.equal(calculate('multiply', 1e308, 10).ok, false);
  });
});

describe('calculator tools', () => {
  const client = new Client({ name: 'test', version: '0.0.0' });

  before(async () => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await createServer().connect(serverSide);
    await client.connect(clientSide);
  });
  after(() => client.close());

  it('lists the four tools with input and output schemas', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'divide', 'multiply', 'subtract']);
    for (const tool of tools) {
      assert.deepEqual(tool.inputSchema.required, ['a', 'b']);
      assert.ok(tool.outputSchema);
    }
  });

  it('answers with text and structured content', async () => {
    const result = await client.callTool({ name: 'multiply', arguments: { x: 6, y: 7 } });
    assert.deepEqual(result.content, [{ type: 'text', text: '42' }]);
    assert.deepEqual(result.structuredContent, { value: 42 });
    assert.equal(result.isError, undefined);
  });

  it('divide by zero is a tool error, not a protocol error', async () => {
    const result = await client.callTool({ name: 'divide', arguments: { x: 1, y: 0 } });
    assert.equal(result.isError, true);
    assert.deepEqual(result.content, [{ type: 'text', text: 'Division by zero' }]);
  });

  it('rejects a non-number argument', async () => {
    const result = await client.callTool({ name: 'add', arguments: { a: 'one', b: 2 } });
    assert.equal(result.isError, true);
  });
});
