import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DeploymentStage } from '../../core/deployment.ts';
import { archiveRefusal, deploymentRefusal, endSilenceRefusal, restoreRefusal, rollbackRefusal, rollbackTarget, silenceRefusal, type DeploymentView } from '../../dashboard/src/controls.ts';

const running = (stage: DeploymentStage, paused = false): DeploymentView => ({ service: 'calc', version: '1.0.1', stage, paused, running: true });

test('deployment controls are refused for the reasons the workflow gives', () => {
  assert.equal(deploymentRefusal('promote', 'calc', null), 'calc has no deployment in progress');
  assert.equal(deploymentRefusal('pause', 'calc', { ...running('ACTIVE'), running: false }), 'calc has no deployment in progress');
  assert.equal(deploymentRefusal('abort', 'calc', running('ROLLED_BACK')), 'cannot abort: the deployment of calc@1.0.1 has ended (ROLLED_BACK)');
  assert.equal(deploymentRefusal('pause', 'calc', running('PROMOTING')), 'cannot pause: the deployment is promoting');
  assert.equal(deploymentRefusal('abort', 'calc', running('ROLLING_BACK')), 'cannot abort: the deployment is rolling back');
  assert.match(deploymentRefusal('promote', 'calc', running('WARM'))!, /only kept warm/);
  assert.match(deploymentRefusal('promote', 'calc', running('BLOCKED'))!, /replay gate blocked/);
  assert.equal(deploymentRefusal('pause', 'calc', running('CANARY', true)), 'already paused');
  assert.equal(deploymentRefusal('resume', 'calc', running('CANARY')), 'not paused');
  assert.equal(deploymentRefusal('set-weight', 'calc', running('STARTING')), 'set-weight only applies to a canary (stage is STARTING)');
  for (const c of ['promote', 'pause', 'abort', 'set-weight'] as const) assert.equal(deploymentRefusal(c, 'calc', running('CANARY')), undefined, c);
  assert.equal(deploymentRefusal('resume', 'calc', running('CANARY', true)), undefined);
});

test('rollback goes to the newest archived version older than stable, as the API picks it', () => {
  const versions = [
    { version: '1.0.0', state: 'ARCHIVED' as const },
    { version: '1.0.2', state: 'ARCHIVED' as const },
    { version: '1.0.10', state: 'ARCHIVED' as const },
    { version: '1.0.11', state: 'ACTIVE' as const },
    { version: '1.0.12', state: 'ARCHIVED' as const },
  ];
  assert.equal(rollbackTarget(versions, '1.0.11'), '1.0.10', 'numeric order, and nothing newer than stable');
  assert.equal(rollbackRefusal('calc', versions, '1.0.11'), undefined);
  assert.equal(rollbackRefusal('calc', versions, '1.0.0'), 'calc has no archived version older than 1.0.0');
});

test('archive and restore follow the version state machine', () => {
  assert.equal(archiveRefusal({ version: '1.0.0', state: 'STAGED' }), undefined);
  assert.equal(archiveRefusal({ version: '1.0.0', state: 'ARCHIVED' }), 'already archived');
  assert.equal(archiveRefusal({ version: '1.0.0', state: 'CANARY' }), 'a CANARY version cannot be archived');
  assert.equal(archiveRefusal({ version: '1.0.0', state: 'FAILED' }), 'a FAILED version cannot be archived');
  assert.equal(restoreRefusal({ version: '1.0.0', state: 'ARCHIVED' }), undefined);
  assert.match(restoreRefusal({ version: '1.0.0', state: 'ACTIVE' })!, /only an archived version/);
});

test('a silence is refused for what the API refuses: no reason, a reason too long, a duration out of 1 minute to 30 days', () => {
  assert.match(silenceRefusal({ comment: '  ', minutes: 60 })!, /^say why first/);
  assert.equal(silenceRefusal({ comment: 'x'.repeat(1001), minutes: 60 }), 'the reason is 1001 characters; at most 1000');
  for (const minutes of [0, 1.5, 43_201, Number.NaN]) assert.match(silenceRefusal({ comment: 'known', minutes })!, /from 1 to 43200/, String(minutes));
  for (const minutes of [1, 43_200]) assert.equal(silenceRefusal({ comment: 'known', minutes }), undefined);
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(endSilenceRefusal('2026-01-01T12:00:00.000Z', now), 'already expired');
  assert.equal(endSilenceRefusal('2026-01-01T12:00:01.000Z', now), undefined);
});
