import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
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

/** Records a live step group with the folder it runs in, the proof that a pid is still ours later. */
export function recordGroup(stateDir: string, pgid: number, cwd: string): () => void {
  const dir = stepGroupsDir(stateDir);
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, String(pgid));
  writeFileSync(file, cwd);
  return () => rmSync(file, { force: true });
}

/**
 * True when pid still leads its own process group and runs in cwd: a pid can be reused once its
 * group is gone, and a reused one must never be signalled.
 */
function isOurGroupLeader(pid: number, cwd: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]) === pid && readlinkSync(`/proc/${pid}/cwd`) === cwd;
  } catch {
    return false;
  }
}

/**
 * Ends the groups a previous worker left behind; returns how many were still alive. A group whose
 * leader has already exited is left alone: its pid may belong to someone else by now.
 */
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
    const file = path.join(dir, name);
    const cwd = readFileSync(file, 'utf8').trim();
    if (Number.isInteger(pgid) && pgid > 1 && isOurGroupLeader(pgid, cwd) && killGroup(pgid, 'SIGKILL')) reaped++;
    rmSync(file, { force: true });
  }
  return reaped;
}
