import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, DEFAULT_BACKOFF } from '../../runner/backoff.ts';

const policy = { baseMs: 100, maxMs: 1_000, factor: 2, jitter: 0.5 };
const noJitter = () => 0;

test('delays double from the base and stop at the cap', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, noJitter)),
    [100, 200, 400, 800, 1_000, 1_000],
  );
});

test('jitter takes off at most its share of the delay', () => {
  assert.equal(backoffDelay(3, policy, () => 1), 200);
  assert.equal(backoffDelay(3, policy, () => 0.5), 300);
  assert.equal(backoffDelay(10, policy, () => 1), 500, 'jitter applies to the capped delay');
});

test('huge attempt numbers stay at the cap instead of overflowing', () => {
  assert.equal(backoffDelay(10_000, policy, noJitter), 1_000);
  assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, DEFAULT_BACKOFF, noJitter), DEFAULT_BACKOFF.maxMs);
});

test('no failure yet, or a nonsense attempt, means no delay', () => {
  assert.equal(backoffDelay(0, policy, noJitter), 0);
  assert.equal(backoffDelay(-3, policy, noJitter), 0);
  assert.equal(backoffDelay(Number.NaN, policy, noJitter), 0);
});

test('out-of-range jitter and random values are clamped', () => {
  assert.equal(backoffDelay(1, { ...policy, jitter: 5 }, () => 1), 0);
  assert.equal(backoffDelay(1, { ...policy, jitter: -1 }, () => 1), 100);
  assert.equal(backoffDelay(1, policy, () => 7), 50);
});

test('the default policy starts at half a second and caps at thirty', () => {
  assert.equal(backoffDelay(1, DEFAULT_BACKOFF, noJitter), 500);
  assert.equal(backoffDelay(20, DEFAULT_BACKOFF, noJitter), 30_000);
});
