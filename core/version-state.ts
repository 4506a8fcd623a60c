import type { VersionState } from './documents.ts';

/**
 * The version state machine. A service's working copy is DEVELOPMENT, a save under check is
 * VALIDATING; from STAGED on, the state belongs to an immutable version. FAILED, ROLLED_BACK and
 * ABORTED end a run, but such a version (like an ARCHIVED one) may be deployed again.
 */
export const TRANSITIONS: Readonly<Record<VersionState, readonly VersionState[]>> = {
  DEVELOPMENT: ['VALIDATING'],
  VALIDATING: ['STAGED', 'FAILED', 'DEVELOPMENT'],
  STAGED: ['CANARY', 'ACTIVE', 'ARCHIVED', 'ABORTED', 'BLOCKED'],
  // Left by an operator's override (with a reason), or ended by an abort or a newer deployment.
  BLOCKED: ['CANARY', 'ACTIVE', 'ABORTED'],
  CANARY: ['ACTIVE', 'ROLLED_BACK', 'ABORTED'],
  ACTIVE: ['ARCHIVED', 'ROLLED_BACK'],
  ARCHIVED: ['STAGED', 'BLOCKED', 'CANARY', 'ACTIVE'],
  FAILED: [],
  ROLLED_BACK: ['BLOCKED', 'CANARY', 'ACTIVE', 'ARCHIVED'],
  ABORTED: ['BLOCKED', 'CANARY', 'ACTIVE', 'ARCHIVED'],
};

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  constructor(
    readonly from: VersionState,
    readonly to: VersionState,
    readonly subject: string,
  ) {
    const allowed = TRANSITIONS[from];
    super(`${subject}: cannot go from ${from} to ${to} (from ${from} only ${allowed.length ? allowed.join(', ') : 'nothing'} is allowed)`);
  }
}

export function canTransition(from: VersionState, to: VersionState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: VersionState, to: VersionState, subject: string): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to, subject);
}

/** Every state from which `to` may be reached: the filter of a conditional update. */
export function statesLeadingTo(to: VersionState): VersionState[] {
  return (Object.keys(TRANSITIONS) as VersionState[]).filter((from) => TRANSITIONS[from].includes(to));
}
