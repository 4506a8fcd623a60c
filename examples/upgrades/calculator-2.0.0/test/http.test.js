import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createApp } from '../src/http.js';

describe('Streamable HTTP endpoint', () => {
  const { app, sessions, closeAll } = createApp('/mcp');
  /** @type {import('node:http').Server} */
  let listener;
  let url = '';

  before(async () => {
    listener = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const address = listener.address();
    assert.ok(address && typeof address === 'object');
    url = `http://127.0.0.1:${address.port}/mcp`;
  });
  after(async () => {
    await closeAll();
    listener.closeAllConnections();
    await new Promise((resolve) => listener.close(resolve));
  });

  it('serves a session to a real client, then ends it on DELETE', async () => {
    const transport = new StreamableHTTPClientTransport(new URL(url));
    const client = new Client({ name: 'test', version: '0.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId;
    assert.ok(sessionId && sessions.has(sessionId));
    const result = await client.callTool({ name: 'add', arguments: { x: 2, y: 3 } });
    assert.deepEqual(result.structuredContent, { value: 5 });
    await transport.terminateSession();
    assert.equal(sessions.has(sessionId), false);
    await client.close();
    const after = await fetch(url, { method: 'GET', headers: { 'mcp-session-id': sessionId, accept: 'text/event-stream' } });
    assert.equal(after.status, 404);
  });

  it('answers 400 without a session id and 404 for an unknown one', async () => {
    assert.equal((await fetch(url, { method: 'GET', headers: { accept: 'text/event-stream' } })).status, 400);
    const res = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': 'no-such-session' } });
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.code, -32001);
  });

  it('answers bad JSON with a JSON-RPC parse error', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{not json',
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, -32700);
  });

  it('refuses a foreign Host header (DNS rebinding protection)', async () => {
    const http = await import('node:http');
    const status = await new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'GET', headers: { host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 403);
  });
});
