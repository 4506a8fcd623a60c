/**
 * The pin rule shared by the gateway and replay (compat/pin-chains.ts resolvePin): which case a
 * refusal is, since the gateway answers each differently (400 for a bad or newer pin and a chain
 * that cannot be built, 500 when the transforms failed to load for another reason).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChainError } from '../../compat/chain.ts';
import { resolvePin } from '../../compat/pin-chains.ts';
import type { LoadedTransform } from '../../compat/types.ts';

const transforms: LoadedTransform[] = [
  { id: 'transforms/1.0-to-1.5.ts', from: '1.0.0', to: '1.5.0', description: 'first' },
  { id: 'transforms/1.5-to-2.0.ts', from: '1.5.0', to: '2.0.0', description: 'second' },
];

test('an older pin goes through the chain; the serving version needs none, whatever the transforms', () => {
  const older = resolvePin('s', '1.2.0', '2.0.0', transforms);
  assert.ok('chain' in older);
  assert.deepEqual(older.chain.steps.map((t) => t.id), ['transforms/1.0-to-1.5.ts', 'transforms/1.5-to-2.0.ts']);
  assert.deepEqual(resolvePin('s', '2.0.0', '2.0.0', new Error('does not load')), { chain: { service: 's', from: '2.0.0', to: '2.0.0', steps: [] } });
});

test('a refusal says which case it is', () => {
  const refusal = (asked: string, loaded: LoadedTransform[] | Error = transforms) => {
    const resolved = resolvePin('s', asked, '2.0.0', loaded);
    return 'refused' in resolved ? resolved.refused : undefined;
  };
  assert.deepEqual(refusal('1.0'), { case: 'invalid', message: 'not an x.y.z version: 1.0' });
  assert.deepEqual(refusal('3.0.0', new Error('not read for a newer pin')), { case: 'newer', message: 'transforms only migrate older clients forward' });
  assert.deepEqual(refusal('0.5.0'), { case: 'no-chain', message: 's: no transform covers version 0.5.0 (the oldest one, transforms/1.0-to-1.5.ts, starts at 1.0.0)', chainError: true });
  assert.deepEqual(refusal('1.0.0', new ChainError('s 2.0.0 has no staged folder to load transforms from')), { case: 'no-chain', message: 's 2.0.0 has no staged folder to load transforms from', chainError: true });
  assert.deepEqual(refusal('1.0.0', new Error('transforms/x.ts: does not load')), { case: 'no-chain', message: 'transforms/x.ts: does not load', chainError: false });
});
