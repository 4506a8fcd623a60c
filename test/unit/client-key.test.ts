import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientKey } from '../../api/gateway/client-key.ts';
import { CLIENT_INFO_META_KEY } from '../../api/gateway/protocol-generation.ts';

const withInfo = (name: string, version = '1.0.0') => [{ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { [CLIENT_INFO_META_KEY]: { name, version } } } }];
const key = (input: Parameters<typeof clientKey>[0]) => {
  const r = clientKey(input);
  assert.ok(r.ok, 'a key');
  return r;
};

describe('clientKey: the documented chain', () => {
  test('X-Mcpship-Client first, as given', () => {
    assert.deepEqual(key({ clientHeader: 'team-a/bot-7', authorization: 'Bearer s3cret', messages: withInfo('x'), remoteAddress: '10.0.0.1' }), { ok: true, key: 'client:team-a/bot-7', source: 'header' });
  });

  test('an unusable X-Mcpship-Client is refused with a reason, not ignored', () => {
    for (const bad of ['has space', 'x'.repeat(201), 'é']) {
      const r = clientKey({ clientHeader: bad, messages: [] });
      assert.ok(!r.ok && /X-Mcpship-Client/.test(r.error), bad);
    }
  });

  test('then the credential, hashed: never raw, equal for equal credentials, apart for others', () => {
    const a = key({ authorization: 'Bearer s3cret-token', messages: withInfo('x'), remoteAddress: '10.0.0.1' });
    assert.equal(a.source, 'credential');
    assert.ok(a.key.startsWith('cred:') && !a.key.includes('s3cret'));
    assert.equal(key({ authorization: 'Bearer s3cret-token', messages: [], remoteAddress: '10.9.9.9' }).key, a.key, 'the same credential from elsewhere is the same client');
    assert.notEqual(key({ authorization: 'Bearer other', messages: [] }).key, a.key);
  });

  test('then _meta client info with the address; then the address alone', () => {
    const info = key({ messages: withInfo('inspector'), remoteAddress: '10.0.0.1' });
    assert.equal(info.source, 'client-info');
    assert.notEqual(key({ messages: withInfo('inspector'), remoteAddress: '10.0.0.2' }).key, info.key);
    assert.notEqual(key({ messages: withInfo('other'), remoteAddress: '10.0.0.1' }).key, info.key);
    const init = [{ jsonrpc: '2.0', id: 1, method: 'initialize', params: { clientInfo: { name: 'inspector', version: '1.0.0' } } }];
    assert.equal(key({ messages: init, remoteAddress: '10.0.0.1' }).key, info.key, 'a 2025 initialize names the client the same way');
    const addr = key({ messages: [], remoteAddress: '10.0.0.1' });
    assert.equal(addr.source, 'address');
    assert.ok(addr.key.startsWith('addr:') && !addr.key.includes('10.0.0.1'));
  });
});
