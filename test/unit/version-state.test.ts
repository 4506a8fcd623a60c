import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VERSION_STATES } from '../../core/documents.ts';
import { IllegalTransitionError, TRANSITIONS, assertTransition, canTransition, statesLeadingTo } from '../../core/version-state.ts';
import { bumpPatch, compareVersions, nextVersion } from '../../core/semver.ts';

test('the lifecycle of a healthy version is allowed step by step', () => {
  const path = ['DEVELOPMENT', 'VALIDATING', 'STAGED', 'CANARY', 'ACTIVE', 'ARCHIVED'] as const;
  for (let i = 1; i < path.length; i++) assert.ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`);
});

test('illegal transitions are errors that name both states and what is allowed', () => {
  assert.throws(() => assertTransition('STAGED', 'VALIDATING', 'svc@1.0.0'), (err: unknown) => {
    assert.ok(err instanceof IllegalTransitionError);
    assert.equal(err.message, 'svc@1.0.0: cannot go from STAGED to VALIDATING (from STAGED only CANARY, ACTIVE, ARCHIVED, ABORTED, BLOCKED is allowed)');
    return true;
  });
  assert.throws(() => assertTransition('FAILED', 'STAGED', 'x'), /from FAILED only nothing is allowed/);
  assert.throws(() => assertTransition('ACTIVE', 'CANARY', 'x'), IllegalTransitionError);
  assert.throws(() => assertTransition('DEVELOPMENT', 'ACTIVE', 'x'), IllegalTransitionError);
});

test('rollback and restore paths exist', () => {
  assert.ok(canTransition('CANARY', 'ROLLED_BACK'));
  assert.ok(canTransition('ARCHIVED', 'STAGED'), 'restore');
  assert.ok(canTransition('ARCHIVED', 'CANARY'), 'deploy an archived version again');
  assert.ok(canTransition('ROLLED_BACK', 'CANARY'), 'try a rolled-back version again');
});

test('a version the replay gate blocked leaves BLOCKED only by an override or an abort', () => {
  assert.ok(canTransition('STAGED', 'BLOCKED'));
  assert.deepEqual([...TRANSITIONS.BLOCKED].sort(), ['ABORTED', 'ACTIVE', 'CANARY']);
  assert.ok(!canTransition('BLOCKED', 'ROLLED_BACK'), 'no user traffic reached it, so there is nothing to roll back');
});

test('the table covers every state and statesLeadingTo inverts it', () => {
  assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...VERSION_STATES].sort());
  for (const to of VERSION_STATES) {
    for (const from of VERSION_STATES) assert.equal(statesLeadingTo(to).includes(from), canTransition(from, to));
  }
});

test('version numbers: a bumped manifest wins, else the next patch of the highest staged', () => {
  assert.equal(nextVersion('1.0.0', []), '1.0.0');
  assert.equal(nextVersion('1.0.0', ['1.0.0']), '1.0.1');
  assert.equal(nextVersion('1.0.0', ['1.0.0', '1.0.3', '1.0.2']), '1.0.4');
  assert.equal(nextVersion('2.0.0', ['1.0.4']), '2.0.0');
  assert.equal(nextVersion('1.0.2', ['1.0.4']), '1.0.5', 'a manifest behind the staged versions does not go back');
  assert.equal(compareVersions('1.10.0', '1.9.9') > 0, true);
  assert.equal(bumpPatch('0.9.9'), '0.9.10');
  assert.throws(() => bumpPatch('1.0'), /not an x\.y\.z version/);
});
