/**
 * Instances are detached process groups, so they outlive a runner that was killed outright
 * (SIGKILL, OOM, power to the container). The next runner finds them through the InstanceDocs the
 * dead one left in a live state, and ends them before starting its own. A pid is only signalled
 * when /proc shows it still leads its own process group with the pool's folder as working
 * directory; a recycled pid belongs to someone else and is left alone.
 */
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/log.ts';
import type { Store } from '../core/mongo.ts';
import { signalGroup } from './process-group.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const LIVE_STATES = ['starting', 'ready', 'draining', 'failed'] as const;

function realpath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** True when pid is a process group leader running in dir (Linux /proc; elsewhere: unknown, false). */
export function isInstanceLeader(pid: number, dir: string): boolean {
  try {
    // The command name in field 2 may hold spaces and parentheses; the fields after it do not.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, , pgrp] = fields;
    if (state === 'Z' || Number(pgrp) !== pid) return false;
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    return cwd === (realpath(dir) ?? path.resolve(dir));
  } catch {
    return false;
  }
}

/**
 * Ends the process groups of instances this node's previous runner left running; returns how many.
 * Only this node's documents (and those from before nodes, which have none): other nodes' instances
 * run on other runners, perhaps other machines.
 */
export async function reapLeftovers(store: Store, nodeId: string, graceMs: number, log: Logger): Promise<number> {
  const stale = await store.instances.find({ $or: [{ nodeId }, { nodeId: { $exists: false } }], state: { $in: [...LIVE_STATES] } }).toArray();
  let reaped = 0;
  for (const doc of stale) {
    const pool = await store.pools.findOne({ service: doc.service, version: doc.version });
    if (doc.pid && pool && isInstanceLeader(doc.pid, pool.dir)) {
      log.warn({ instanceId: doc.instanceId, pid: doc.pid }, 'ending an instance a previous runner left running');
      signalGroup(doc.pid, 'SIGTERM');
      for (let waited = 0; waited < graceMs && signalGroup(doc.pid, 0); waited += 50) await sleep(50);
      signalGroup(doc.pid, 'SIGKILL');
      reaped += 1;
    }
    await store.instances.updateOne(
      { instanceId: doc.instanceId },
      { $set: { state: 'stopped', lastError: 'left by a runner that did not stop cleanly', updatedAt: new Date() } },
    );
  }
  return reaped;
}
