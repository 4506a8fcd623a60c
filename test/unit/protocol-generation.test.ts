import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isStatelessRevision, PROTOCOL_VERSION_META_KEY, protocolFacts } from '../../api/gateway/protocol-generation.ts';

const request = (meta?: Record<string, unknown>) => ({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: meta ? { _meta: meta } : {} });

describe('protocolFacts', () => {
  test('the _meta claim makes a request stateless and names its revision, over the header', () => {
    assert.deepEqual(protocolFacts(undefined, [request({ [PROTOCOL_VERSION_META_KEY]: '2026-07-28' })]), { generation: 'stateless', revision: '2026-07-28' });
    assert.deepEqual(protocolFacts('2026-07-28', [request({ [PROTOCOL_VERSION_META_KEY]: '2027-01-01' })]), { generation: 'stateless', revision: '2027-01-01' });
    // An unsupported revision in the claim is still the 2026 path's to refuse (the SDK routes it so).
    assert.equal(protocolFacts(undefined, [request({ [PROTOCOL_VERSION_META_KEY]: '2025-06-18' })]).generation, 'stateless');
    assert.deepEqual(protocolFacts('2026-07-28', [request({ [PROTOCOL_VERSION_META_KEY]: 7 })]), { generation: 'stateless', revision: '2026-07-28' });
  });

  test('the header alone decides for requests without the claim (GET, DELETE, a body without _meta)', () => {
    assert.deepEqual(protocolFacts('2026-07-28', []), { generation: 'stateless', revision: '2026-07-28' });
    assert.deepEqual(protocolFacts('2025-11-25', [request()]), { generation: 'session', revision: '2025-11-25' });
    assert.deepEqual(protocolFacts('garbage', [request()]), { generation: 'session', revision: 'garbage' });
    assert.deepEqual(protocolFacts(undefined, [{ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } }]), { generation: 'session' });
  });

  test('a claim anywhere in a batch, or other _meta keys only', () => {
    assert.equal(protocolFacts(undefined, [request(), request({ [PROTOCOL_VERSION_META_KEY]: '2026-07-28' })]).generation, 'stateless');
    assert.equal(protocolFacts(undefined, [request({ progressToken: 1 })]).generation, 'session');
  });

  test('isStatelessRevision: dates from 2026-07-28 on only', () => {
    assert.deepEqual(['2026-07-28', '2026-12-01', '2025-11-25', '2024-11-05', '2026-7-28', 'zzzz'].map(isStatelessRevision), [true, true, false, false, false, false]);
  });
});
