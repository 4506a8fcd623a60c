/**
 * Why the API would refuse a control, known before sending it, so the page can disable the button
 * and say why. The rules mirror the deployment workflow's Update validators
 * (workflows/deployment-workflow.ts), DeploymentControl.rollback, the version state machine and
 * the silence routes' schema (api/routes/alerts.ts); the API stays the judge: its refusal, when the
 * page's view was stale, is shown as well.
 */
import { SILENCE_LIMITS } from '../../alerts/types.ts';
import type { DeploymentAnswer, DeploymentControlPath } from '../../api/routes/deployments.ts';
import type { DeploymentStage } from '../../core/deployment.ts';
import type { VersionDoc } from '../../core/documents.ts';
import { compareVersions } from '../../core/semver.ts';
import { TRANSITIONS } from '../../core/version-state.ts';

/** What of GET /api/services/<name>/deployment decides which controls apply. */
export type DeploymentView = Pick<DeploymentAnswer, 'service' | 'version' | 'stage' | 'paused' | 'running'>;

const ENDED: DeploymentStage[] = ['ACTIVE', 'ROLLED_BACK', 'ABORTED', 'FAILED'];

const VERB: Record<DeploymentControlPath, string> = { promote: 'promote', pause: 'pause', resume: 'resume', abort: 'abort', 'set-weight': 'set the weight' };

export function deploymentRefusal(control: DeploymentControlPath, service: string, dep: DeploymentView | null): string | undefined {
  if (!dep || !dep.running) return `${service} has no deployment in progress`;
  const what = VERB[control];
  if (ENDED.includes(dep.stage)) return `cannot ${what}: the deployment of ${dep.service}@${dep.version} has ended (${dep.stage})`;
  if (dep.stage === 'ROLLING_BACK' || dep.stage === 'PROMOTING') return `cannot ${what}: the deployment is ${dep.stage.toLowerCase().replace('_', ' ')}`;
  if (dep.stage === 'WARM') return `cannot ${what}: ${dep.version} is active; the previous version is only kept warm (roll back to it instead)`;
  if (control === 'promote' && dep.stage === 'BLOCKED') return 'the replay gate blocked this version: override it with a reason first';
  if (control === 'pause' && dep.paused) return 'already paused';
  if (control === 'resume' && !dep.paused) return 'not paused';
  if (control === 'set-weight' && dep.stage !== 'CANARY') return `set-weight only applies to a canary (stage is ${dep.stage})`;
  return undefined;
}

type VersionRow = Pick<VersionDoc, 'version' | 'state'>;

/** The version a plain rollback goes to: the newest archived one older than the stable version. */
export function rollbackTarget(versions: readonly VersionRow[], stable: string | undefined): string | undefined {
  return versions
    .filter((v) => v.state === 'ARCHIVED' && (!stable || compareVersions(v.version, stable) < 0))
    .map((v) => v.version)
    .sort(compareVersions)
    .at(-1);
}

export function rollbackRefusal(service: string, versions: readonly VersionRow[], stable: string | undefined): string | undefined {
  return rollbackTarget(versions, stable) ? undefined : `${service} has no archived version older than ${stable ?? 'the active one'}`;
}

export function archiveRefusal(v: VersionRow): string | undefined {
  if (v.state === 'ARCHIVED') return 'already archived';
  return TRANSITIONS[v.state].includes('ARCHIVED') ? undefined : `a ${v.state} version cannot be archived`;
}

export function restoreRefusal(v: VersionRow): string | undefined {
  return v.state === 'ARCHIVED' ? undefined : `only an archived version can be restored (this one is ${v.state})`;
}

const MAX_SILENCE_MINUTES = SILENCE_LIMITS.maxDurationSec / 60;

export function silenceRefusal(draft: { comment: string; minutes: number }): string | undefined {
  const comment = draft.comment.trim();
  if (!comment) return 'say why first (the reason is kept with the silence)';
  if (comment.length > SILENCE_LIMITS.maxCommentChars) return `the reason is ${comment.length} characters; at most ${SILENCE_LIMITS.maxCommentChars}`;
  if (!Number.isInteger(draft.minutes) || draft.minutes < 1 || draft.minutes > MAX_SILENCE_MINUTES) return `a silence lasts a whole number of minutes from 1 to ${MAX_SILENCE_MINUTES} (30 days)`;
  return undefined;
}

export function endSilenceRefusal(expiresAt: string, now: number): string | undefined {
  return new Date(expiresAt).getTime() <= now ? 'already expired' : undefined;
}
