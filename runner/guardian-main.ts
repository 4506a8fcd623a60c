/**
 * The runner's guardian, a process of its own (detached, so a signal to the runner's process group
 * does not reach it). The runner tells it, on stdin, which instance process groups exist: a line
 * `+<pgid>` when one starts, `-<pgid>` when it is gone; and a line `=<json>` with the node's lease
 * (GuardedLease), or `=` alone once an orderly stop has ended the lease itself. When stdin ends the runner is gone, however it went (SIGKILL included: the kernel
 * closes the pipe), and the guardian ends every group still listed — SIGTERM, then SIGKILL after
 * the grace period given as the only argument — and, meanwhile, the node's lease (node.ts endLease).
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectStore } from '../core/mongo.ts';
import type { GuardedLease } from './guardian.ts';
import { endLease } from './node.ts';

const graceMs = Number(process.argv[2] ?? 5_000);
const groups = new Set<number>();
let lease: GuardedLease | undefined;

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

async function endNodeLease(held: GuardedLease): Promise<void> {
  try {
    const store = await connectStore(held.uri, held.database);
    try {
      if (await endLease(store, held)) console.error(`runner guardian: the runner is gone; ended the lease of node ${held.nodeId}`);
    } finally {
      await store.close();
    }
  } catch (err) {
    console.error(`runner guardian: could not end the lease of node ${held.nodeId} (it lapses by itself): ${(err as Error).message}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.startsWith('=')) {
    lease = line.length > 1 ? (JSON.parse(line.slice(1)) as GuardedLease) : undefined;
    return;
  }
  const pgid = Number(line.slice(1));
  if (!Number.isInteger(pgid) || pgid <= 1) return;
  if (line.startsWith('+')) groups.add(pgid);
  else if (line.startsWith('-')) groups.delete(pgid);
});
lines.on('close', async () => {
  const left = [...groups].filter(exists);
  const ending = lease ? endNodeLease(lease) : Promise.resolve();
  if (left.length) console.error(`runner guardian: the runner is gone; ending instance process groups ${left.join(', ')}`);
  for (const pgid of left) signal(pgid, 'SIGTERM');
  for (let waited = 0; waited < graceMs && left.some(exists); waited += 100) await sleep(100);
  for (const pgid of left) signal(pgid, 'SIGKILL');
  await ending;
  process.exit(0);
});
