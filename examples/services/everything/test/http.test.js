import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { Client as SessionClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as SessionTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { createApp } from '../src/http.js';

/** @param {{ content: unknown }} result */
const firstText = (result) => /** @type {{ type: string, text: string }[]} */ (result.content)[0]?.text;

describe('one endpoint, both protocol generations', () => {
  const { listener, sessions, closeAll } = createApp('/mcp');
  const server = http.createServer(listener);
  let url = '';

  before(async () => {
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    url = `http://127.0.0.1:${address.port}/mcp`;
  });
  after(async () => {
    await closeAll();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('serves a 2026-07-28 client without a session, with cache hints on lists', async () => {
    const transport = new ModernTransport(new URL(url));
    const client = new ModernClient({ name: 'test', version: '0.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(transport);
    assert.equal(transport.protocolVersion, '2026-07-28');
    assert.equal(transport.sessionId, undefined);
    assert.equal(sessions.size, 0, 'no 2025 session was opened');
    const list = await client.listTools();
    assert.ok(list.tools.some((tool) => tool.name === 'test_simple_text'));
    assert.deepEqual([list.ttlMs, list.cacheScope], [10_000, 'public']);
    assert.equal(firstText(await client.callTool({ name: 'test_simple_text', arguments: {} })), 'This is a simple text response for testing.');
    const failed = await client.callTool({ name: 'test_error_handling', arguments: {} });
    assert.equal(failed.isError, true);
    await client.close();
  });

  it('serves a 2025 session: initialize, sampling pushed to the client, subscribe and update', async () => {
    const transport = new SessionTransport(new URL(url));
    const client = new SessionClient({ name: 'test', version: '0.0.0' }, { capabilities: { sampling: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
      role: 'assistant',
      model: 'test-model',
      content: { type: 'text', text: `echo: ${/** @type {{ text: string }} */ (request.params.messages[0]?.content).text}` },
    }));
    /** @type {string[]} */
    const updated = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (n) => void updated.push(n.params.uri));
    await client.connect(transport);
    assert.ok(transport.sessionId && sessions.has(transport.sessionId));
    assert.equal(client.getServerVersion()?.name, 'everything');

    const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'hi' } });
    assert.equal(firstText(/** @type {{ content: unknown }} */ (sampled)), 'LLM response: echo: hi');

    await client.subscribeResource({ uri: 'test://watched-resource' });
    await client.callTool({ name: 'touch_watched_resource', arguments: {} });
    for (let i = 0; i < 100 && updated.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(updated, ['test://watched-resource']);
    const read = await client.readResource({ uri: 'test://watched-resource' });
    assert.match(String(/** @type {{ text?: string }} */ (read.contents[0]).text), /revision 1/);

    await transport.terminateSession();
    await client.close();
  });

  it('refuses a foreign Host (DNS rebinding protection)', async () => {
    const status = await new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 403);
  });
});
