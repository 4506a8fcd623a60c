import { execaSync } from 'execa';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  pgid: number;
  args: string;
}

/** Every live process (zombies left out: they hold no resources and no port, and are only waiting to be reaped). */
export function liveProcesses(): ProcessInfo[] {
  const { stdout } = execaSync('ps', ['-eo', 'pid=,ppid=,pgid=,stat=,args='], { reject: false });
  return stdout
    .split('\n')
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && !m[4]!.startsWith('Z'))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), args: m[5]! }));
}

/** PIDs of live processes whose command line contains the marker (e.g. a test's own temp dir). */
export function processesMentioning(marker: string): number[] {
  return liveProcesses()
    .filter((p) => p.args.includes(marker))
    .map((p) => p.pid);
}

/** Live members of the given process groups, as `pid (pgid) args` for a readable failure. */
export function membersOfGroups(pgids: Iterable<number>): string[] {
  const wanted = new Set(pgids);
  return liveProcesses()
    .filter((p) => wanted.has(p.pgid))
    .map((p) => `${p.pid} (group ${p.pgid}) ${p.args}`);
}

/**
 * Every live process descended from pid: through parent links and, because a detached child's
 * own children are re-parented to init once it dies, through the process groups that descendants
 * lead (only those: a plain child shares the caller's group, which holds the test itself).
 */
export function descendants(pid: number): ProcessInfo[] {
  const all = liveProcesses();
  const found = new Map<number, ProcessInfo>();
  const groups = new Set<number>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (found.has(p.pid) || p.pid === pid) continue;
      if (p.ppid === pid || found.has(p.ppid) || groups.has(p.pgid)) {
        found.set(p.pid, p);
        if (p.pgid === p.pid) groups.add(p.pgid);
        grew = true;
      }
    }
  }
  return [...found.values()];
}
