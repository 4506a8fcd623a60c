/**
 * System calls of a process over a stretch of time (strace -c attached to all its threads):
 * counts per call do not move with the machine's load the way CPU time does, so they show a
 * change of a few percent that the CPU figures cannot resolve on a shared machine. strace slows
 * the process it traces: runs that count calls are not the ones to read CPU or latency from.
 */
import { spawn } from 'node:child_process';

export interface SyscallCounter {
  /** Ends the count: calls by syscall name. */
  stop(): Promise<Map<string, number>>;
}

export async function countSyscalls(pid: number): Promise<SyscallCounter> {
  const child = spawn('strace', ['-c', '-f', '-q', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  // strace reports nothing until it is attached; give it that moment before the calls start.
  await new Promise((resolve) => setTimeout(resolve, 300));
  return {
    async stop() {
      child.kill('SIGINT');
      await exited;
      const calls = new Map<string, number>();
      // "% time     seconds  usecs/call     calls    errors syscall"
      for (const line of out.split('\n')) {
        const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
        if (m && m[2] !== 'total') calls.set(m[2]!, Number(m[1]));
      }
      return calls;
    },
  };
}
