/**
 * The runner's guardian, a process of its own (detached, so a signal to the runner's process group
 * does not reach it). The runner tells it, on stdin, which instance process groups exist: a line
 * `+<pgid>` when one starts, `-<pgid>` when it is gone. When stdin ends the runner is gone, however
 * it went (SIGKILL included: the kernel closes the pipe), and the guardian ends every group still
 * listed: SIGTERM, then SIGKILL after the grace period given as the only argument.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const graceMs = Number(process.argv[2] ?? 5_000);
const groups = new Set<number>();

const exists = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};
const signal = (pgid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
};

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const pgid = Number(line.slice(1));
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (line.startsWith('+')) groups.add(pgid);
  else if (line.startsWith('-')) groups.delete(pgid);
});
lines.on('close', async () => {
  const left = [...groups].filter(exists);
  if (left.length) console.error(`runner guardian: the runner is gone; ending instance process groups ${left.join(', ')}`);
  for (const pgid of left) signal(pgid, 'SIGTERM');
  for (let waited = 0; waited < graceMs && left.some(exists); waited += 100) await sleep(100);
  for (const pgid of left) signal(pgid, 'SIGKILL');
  process.exit(0);
});
