import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Validation commands run in process groups of their own, so that cancelling a step ends the whole
 * tree (shell, npm, node, ...). Each live group is recorded in a file, so that a worker that died
 * without cleaning up has its leftovers ended by the next worker on the same state dir.
 */
export function stepGroupsDir(stateDir: string): string {
  return path.join(stateDir, 'run', 'step-groups');
}

export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function recordGroup(stateDir: string, pgid: number, what: string): () => void {
  const dir = stepGroupsDir(stateDir);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, String(pgid));
  writeFileSync(file, what);
  return () => rmSync(file, { force: true });
}

/** Ends the groups a previous worker left behind; returns how many were still alive. */
export function reapLeftoverGroups(stateDir: string): number {
  const dir = stepGroupsDir(stateDir);
  let reaped = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const pgid = Number(name);
    if (Number.isInteger(pgid) && pgid > 1 && killGroup(pgid, 'SIGKILL')) reaped++;
    rmSync(path.join(dir, name), { force: true });
  }
  return reaped;
}
