import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compare, passing, scenarioOf, type ConformanceResults } from '../support/conformance.ts';

test('a result folder names its scenario, whatever dashes the scenario has', () => {
  assert.equal(scenarioOf('server-tools-call-simple-text-2026-11-26T08-41-12-448Z'), 'tools-call-simple-text');
  assert.equal(scenarioOf('server-server-stateless-2026-11-26T08-41-10-574Z'), 'server-stateless');
});

test('a check passes only when every occurrence of it is SUCCESS', () => {
  const results: ConformanceResults = new Map([
    ['a/one', [{ status: 'SUCCESS' }]],
    ['a/twice', [{ status: 'SUCCESS' }, { status: 'FAILURE', errorMessage: 'second time' }]],
    ['a/warn', [{ status: 'WARNING' }]],
  ]);
  assert.deepEqual([...passing(results)], ['a/one']);
});

test('compare names checks lost and gained through a proxy, with the reason from the other side', () => {
  const direct: ConformanceResults = new Map([
    ['s/kept', [{ status: 'SUCCESS' }]],
    ['s/lost', [{ status: 'SUCCESS' }]],
    ['s/gained', [{ status: 'FAILURE', errorMessage: 'no  such\ntool' }]],
    ['s/missing', [{ status: 'SUCCESS' }]],
  ]);
  const proxied: ConformanceResults = new Map([
    ['s/kept', [{ status: 'SUCCESS' }]],
    ['s/lost', [{ status: 'FAILURE', errorMessage: 'got 400' }]],
    ['s/gained', [{ status: 'SUCCESS' }]],
  ]);
  assert.deepEqual(compare(direct, proxied), {
    lost: ['s/lost — FAILURE: got 400', 's/missing — not run'],
    gained: ['s/gained — directly: FAILURE: no such tool'],
  });
  assert.deepEqual(compare(direct, direct), { lost: [], gained: [] });
});
