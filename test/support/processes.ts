import { execaSync } from 'execa';

/** PIDs of live processes whose command line contains the marker (e.g. a test's own temp dir). */
export function processesMentioning(marker: string): number[] {
  const { stdout } = execaSync('ps', ['-eo', 'pid=,stat=,args='], { reject: false });
  return stdout
    .split('\n')
    .map((line) => line.trim().match(/^(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && !m[2]!.startsWith('Z') && m[3]!.includes(marker))
    .map((m) => Number(m[1]));
}
