/**
 * A write to mcpship's state disk that fails because the disk (or the user's quota) is full is not a
 * broken save: the same save succeeds once space returns. Activities report it as a retryable
 * failure of its own type, so the service workflow can wait for space instead of refusing the save.
 */
import { ApplicationFailure } from '@temporalio/common';

/** The ApplicationFailure type of a write refused for lack of space. */
export const DISK_FULL = 'DiskFull';

/** Pauses before a save refused by a full state disk is tried again: 10 s, doubling, at most 5 min. */
export function diskFullPauseMs(attempt: number): number {
  return Math.min(10_000 * 2 ** attempt, 300_000);
}

const FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** What a disk-full error says to the user (what was written, where, that the disk is full), or undefined for any other error. */
export function diskFullMessage(err: unknown, writing: string): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  if (typeof code !== 'string' || !FULL_CODES.has(code)) return undefined;
  const quota = code === 'EDQUOT' ? ' (quota exceeded)' : '';
  return `${writing}: the disk is full${quota}: ${(err as Error).message ?? code}`;
}

/** Runs work, turning a disk-full error into a retryable DiskFull failure; any other error passes unchanged. */
export async function diskFullRetryable<T>(writing: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const message = diskFullMessage(err, writing);
    if (message === undefined) throw err;
    throw ApplicationFailure.create({ type: DISK_FULL, message, nonRetryable: false, cause: err as Error });
  }
}
