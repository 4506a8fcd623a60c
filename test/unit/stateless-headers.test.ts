import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { decodeHeaderValue, headerMismatch } from '../../runner/stateless-headers.ts';

const call = (method: string, params: Record<string, unknown>): JSONRPCRequest => ({ jsonrpc: '2.0', id: 1, method, params });
const b64 = (s: string) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const all = { protocolVersion: '2026-07-28', method: 'tools/call' };

test('Mcp-Name must name the tool, prompt or resource of the body, plain or Base64-encoded', () => {
  assert.equal(headerMismatch({ ...all, name: 'whoami' }, call('tools/call', { name: 'whoami' })), undefined);
  assert.equal(headerMismatch({ ...all, name: b64('Hello, 世界') }, call('tools/call', { name: 'Hello, 世界' })), undefined);
  assert.equal(headerMismatch({ ...all, name: b64('=?base64?literal?=') }, call('tools/call', { name: '=?base64?literal?=' })), undefined);
  assert.equal(headerMismatch({ ...all, method: 'resources/read', name: 'file:///a b' }, call('resources/read', { uri: 'file:///a b' })), undefined);
  assert.match(headerMismatch({ ...all, name: 'other' }, call('tools/call', { name: 'whoami' }))!, /params.name "whoami" but the Mcp-Name header names "other"/);
  assert.match(headerMismatch({ ...all, method: 'prompts/get' }, call('prompts/get', { name: 'review' }))!, /Mcp-Name header is missing/);
  assert.match(headerMismatch({ ...all, name: '=?base64?***?=' }, call('tools/call', { name: 'x' }))!, /invalid Base64/);
});

test('MCP-Protocol-Version and Mcp-Method are required; methods without a name need no Mcp-Name', () => {
  assert.match(headerMismatch({ method: 'tools/list' }, call('tools/list', {}))!, /MCP-Protocol-Version/);
  assert.match(headerMismatch({ protocolVersion: '2026-07-28' }, call('tools/list', {}))!, /Mcp-Method header is missing/);
  assert.equal(headerMismatch({ ...all, method: 'tools/list' }, call('tools/list', {})), undefined);
  assert.equal(headerMismatch({ ...all, method: 'server/discover' }, call('server/discover', {})), undefined);
});

test('the Base64 sentinel: decoded only in its exact form, refused when broken', () => {
  assert.equal(decodeHeaderValue('plain'), 'plain');
  assert.equal(decodeHeaderValue('=?BASE64?aGk=?='), '=?BASE64?aGk=?=', 'markers are case-sensitive: not the sentinel');
  assert.equal(decodeHeaderValue(b64(' padded ')), ' padded ');
  assert.equal(decodeHeaderValue('=?base64?aGk?='), undefined, 'unpadded');
  assert.equal(decodeHeaderValue(`=?base64?${Buffer.from([0xff, 0xfe]).toString('base64')}?=`), undefined, 'not UTF-8');
});
