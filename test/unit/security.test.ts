/**
 * The pure parts of mcpship's safety rules: which tokens may guard an API reachable from a network,
 * and what a service's processes inherit from mcpship's environment.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertSafeBind, UnsafeBindError } from '../../api/admin-auth.ts';
import { tokenMatches, weakTokenReason } from '../../core/admin-token.ts';
import { childEnv, neverPassed } from '../../core/child-env.ts';

const STRONG = 'q2W9e7R4t1Y8u5I3o6P0a-S_d4F7g2H9j5K';

test('weak tokens: short, placeholder-like or repetitive', () => {
  assert.match(weakTokenReason('change-me-please')!, /16 characters long; at least 32/);
  assert.match(weakTokenReason('change-me-please-change-me-please-xyz')!, /placeholder/);
  assert.match(weakTokenReason('ab'.repeat(20))!, /fewer than 10 distinct characters/);
  assert.equal(weakTokenReason(STRONG), undefined);
});

test('binding beyond loopback needs a strong token; loopback needs none', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.doesNotThrow(() => assertSafeBind({ host }));
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'mcpship.example.com']) {
    assert.throws(() => assertSafeBind({ host }), (err: Error) => err instanceof UnsafeBindError && new RegExp(`refusing to listen on ${host.replace(/\./g, '\\.')} without an admin token`).test(err.message));
    assert.throws(() => assertSafeBind({ host, adminToken: 'change-me-please' }), /weak admin token \(it is 16 characters long/);
    assert.doesNotThrow(() => assertSafeBind({ host, adminToken: STRONG }));
  }
});

test('token comparison', () => {
  assert.equal(tokenMatches(STRONG, STRONG), true);
  assert.equal(tokenMatches(STRONG, `${STRONG}x`), false);
  assert.equal(tokenMatches(STRONG, undefined), false);
  assert.equal(tokenMatches(undefined, ''), false, 'no token in force matches nothing');
});

test('child environment: the allow-list, the manifest env, passEnv; never mcpship secrets', () => {
  const parent = {
    PATH: '/usr/bin',
    HOME: '/home/dev',
    LANG: 'en_US.UTF-8',
    LC_TIME: 'C',
    HTTPS_PROXY: 'http://proxy:3128',
    MCPSHIP_ADMIN_TOKEN: 'secret',
    MONGODB_URI: 'mongodb://u:p@db',
    TEMPORAL_ADDRESS: 'temporal:7233',
    AWS_SECRET_ACCESS_KEY: 'aws',
    GOOGLE_APPLICATION_CREDENTIALS: '/gcp.json',
    NODE_OPTIONS: '--inspect',
    RANDOM_THING: 'x',
    WEATHER_API_KEY: 'w',
  };
  const env = childEnv({ env: { OWN: 'mine', PATH: '/opt/bin' }, passEnv: ['WEATHER_API_KEY', 'MCPSHIP_ADMIN_TOKEN', 'MISSING'] }, parent);
  assert.deepEqual(env, { PATH: '/opt/bin', HOME: '/home/dev', LANG: 'en_US.UTF-8', LC_TIME: 'C', HTTPS_PROXY: 'http://proxy:3128', WEATHER_API_KEY: 'w', OWN: 'mine' });
  for (const name of ['MCPSHIP_ADMIN_TOKEN', 'MONGODB_URI', 'TEMPORAL_ADDRESS', 'AWS_SECRET_ACCESS_KEY', 'GOOGLE_APPLICATION_CREDENTIALS']) assert.equal(neverPassed(name), true, name);
  assert.equal(neverPassed('WEATHER_API_KEY'), false);
});
