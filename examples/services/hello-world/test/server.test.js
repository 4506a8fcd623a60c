import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { createServer, greet } from '../src/server.js';

describe('greet', () => {
  it('greets by name and falls back to world', () => {
    assert.equal(greet('Ada'), 'Hello, Ada!');
    assert.equal(greet('  '), 'Hello, world!');
  });
});

describe('hello-world tools', () => {
  const client = new Client({ name: 'test', version: '0.0.0' });

  before(async () => {
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await createServer().connect(serverSide);
    await client.connect(clientSide);
  });
  after(() => client.close());

  it('lists hello and echo', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['echo', 'hello']);
  });

  it('hello greets', async () => {
    const result = await client.callTool({ name: 'hello', arguments: { name: 'Ada' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'Hello, Ada!' }]);
  });

  it('echo echoes', async () => {
    const result = await client.callTool({ name: 'echo', arguments: { text: 'ping' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'ping' }]);
  });

  it('rejects a missing argument', async () => {
    const result = await client.callTool({ name: 'hello', arguments: {} });
    assert.equal(result.isError, true);
  });
});
