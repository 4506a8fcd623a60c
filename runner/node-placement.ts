/**
 * Where a pool's slots go: pure decisions over one read of nodes, placements and pools, so that
 * every runner reaches the same plan and the unique placement index settles who wins a race.
 */
import type { NodeDoc, PlacementDoc, PoolDoc } from '../core/documents.ts';

export type SlotKey = Pick<PlacementDoc, 'service' | 'version' | 'slot'>;

export function liveNodes(nodes: readonly NodeDoc[], now: Date): NodeDoc[] {
  return nodes.filter((n) => n.leaseUntil.getTime() > now.getTime());
}

/**
 * The node a new instance of service@version goes to: among nodes with room, the one with fewest
 * instances of that version (spread), then fewest in all, then by id. undefined when all are full.
 */
export function chooseNode(live: readonly NodeDoc[], placements: readonly PlacementDoc[], service: string, version: string): NodeDoc | undefined {
  const total = new Map<string, number>();
  const same = new Map<string, number>();
  for (const p of placements) {
    total.set(p.nodeId, (total.get(p.nodeId) ?? 0) + 1);
    if (p.service === service && p.version === version) same.set(p.nodeId, (same.get(p.nodeId) ?? 0) + 1);
  }
  const room = live.filter((n) => (total.get(n.nodeId) ?? 0) < n.capacity);
  room.sort((a, b) => (same.get(a.nodeId) ?? 0) - (same.get(b.nodeId) ?? 0) || (total.get(a.nodeId) ?? 0) - (total.get(b.nodeId) ?? 0) || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return room[0];
}

export interface PlacementPlan {
  /** Placements to remove: their slot is not wanted any more, or their node is dead. */
  release: PlacementDoc[];
  /** Slots without a (live) placement, in order. */
  unplaced: SlotKey[];
}

export function planPlacements(pools: readonly PoolDoc[], placements: readonly PlacementDoc[], liveIds: ReadonlySet<string>): PlacementPlan {
  const wanted = new Map<string, number>();
  for (const pool of pools) if (pool.desired === 'running') wanted.set(key(pool.service, pool.version), pool.instances);
  const release: PlacementDoc[] = [];
  const held = new Set<string>();
  for (const p of placements) {
    const want = wanted.get(key(p.service, p.version)) ?? 0;
    if (p.slot >= want || !liveIds.has(p.nodeId)) release.push(p);
    else held.add(key(p.service, p.version, p.slot));
  }
  const unplaced: SlotKey[] = [];
  for (const pool of pools) {
    if (pool.desired !== 'running') continue;
    for (let slot = 0; slot < pool.instances; slot++) {
      if (!held.has(key(pool.service, pool.version, slot))) unplaced.push({ service: pool.service, version: pool.version, slot });
    }
  }
  return { release, unplaced };
}

const key = (service: string, version: string, slot?: number) => `${service}\u0000${version}\u0000${slot ?? ''}`;
