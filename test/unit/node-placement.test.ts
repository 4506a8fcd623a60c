import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RoutingCache } from '../../api/gateway/routing-cache.ts';
import type { InstanceDoc, NodeDoc, PlacementDoc, PoolDoc } from '../../core/documents.ts';
import { chooseNode, liveNodes, planPlacements } from '../../runner/node-placement.ts';
import { startRelay } from '../../runner/node-relay.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const node = (nodeId: string, capacity = 10, alive = true): NodeDoc => ({
  nodeId,
  host: nodeId,
  capacity,
  leaseUntil: new Date(NOW.getTime() + (alive ? 5_000 : -1)),
  incarnation: nodeId,
  startedAt: NOW,
});
const pool = (service: string, version: string, instances: number, desired: PoolDoc['desired'] = 'running'): PoolDoc => ({ service, version, dir: '/x', instances, desired, updatedAt: NOW });
const placed = (service: string, version: string, slot: number, nodeId: string): PlacementDoc => ({ service, version, slot, nodeId, placedAt: NOW });

/** Places every unplaced slot the way a runner's pass does, one after another. */
function placeAll(nodes: NodeDoc[], pools: PoolDoc[], existing: PlacementDoc[] = []): PlacementDoc[] {
  const live = liveNodes(nodes, NOW);
  const plan = planPlacements(pools, existing, new Set(live.map((n) => n.nodeId)));
  const held = existing.filter((p) => !plan.release.includes(p));
  for (const slot of plan.unplaced) {
    const n = chooseNode(live, held, slot.service, slot.version);
    if (n) held.push(placed(slot.service, slot.version, slot.slot, n.nodeId));
  }
  return held;
}

describe('runner nodes: placement', () => {
  test("a version's instances are spread over the live nodes", () => {
    const held = placeAll([node('a'), node('b')], [pool('calc', '1.0.0', 2), pool('calc', '2.0.0', 2)]);
    for (const version of ['1.0.0', '2.0.0']) {
      assert.deepEqual(held.filter((p) => p.version === version).map((p) => p.nodeId).sort(), ['a', 'b']);
    }
  });

  test('capacity is respected; what fits nowhere stays unplaced', () => {
    const held = placeAll([node('a', 1), node('b', 2)], [pool('calc', '1.0.0', 4)]);
    assert.equal(held.filter((p) => p.nodeId === 'a').length, 1);
    assert.equal(held.filter((p) => p.nodeId === 'b').length, 2);
    assert.equal(held.length, 3);
  });

  test("a dead node's placements are released and its slots go to live nodes", () => {
    const existing = [placed('calc', '1.0.0', 0, 'a'), placed('calc', '1.0.0', 1, 'b')];
    const held = placeAll([node('a'), node('b', 10, false)], [pool('calc', '1.0.0', 2)], existing);
    assert.deepEqual(held.map((p) => `${p.slot}@${p.nodeId}`).sort(), ['0@a', '1@a']);
  });

  test('slots no longer wanted (lowered, stopped, removed) are released', () => {
    const existing = [placed('calc', '1.0.0', 0, 'a'), placed('calc', '1.0.0', 1, 'a'), placed('old', '1.0.0', 0, 'a'), placed('gone', '1.0.0', 0, 'a')];
    const plan = planPlacements([pool('calc', '1.0.0', 1), pool('old', '1.0.0', 1, 'stopped')], existing, new Set(['a']));
    assert.deepEqual(plan.release.map((p) => `${p.service}/${p.slot}`).sort(), ['calc/1', 'gone/0', 'old/0']);
    assert.deepEqual(plan.unplaced, []);
  });

  test('property: every placement is on a live node within capacity, and each slot is placed at most once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ capacity: fc.integer({ min: 1, max: 4 }), alive: fc.boolean() }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 4 }),
        (specs, sizes) => {
          const nodes = specs.map((s, i) => node(`n${i}`, s.capacity, s.alive));
          const pools = sizes.map((n, i) => pool(`s${i}`, '1.0.0', n));
          const held = placeAll(nodes, pools);
          const live = liveNodes(nodes, NOW);
          const room = live.reduce((sum, n) => sum + n.capacity, 0);
          const wanted = sizes.reduce((a, b) => a + b, 0);
          assert.equal(held.length, Math.min(room, wanted));
          for (const n of nodes) {
            const count = held.filter((p) => p.nodeId === n.nodeId).length;
            assert.ok(count <= (live.includes(n) ? n.capacity : 0));
          }
          assert.equal(new Set(held.map((p) => `${p.service}/${p.slot}`)).size, held.length);
        },
      ),
    );
  });
});

describe('runner nodes: gateways and relays', () => {
  test("the routing cache leaves out ready instances of a node whose lease has lapsed", async () => {
    const inst = (instanceId: string, nodeId?: string): InstanceDoc => ({ instanceId, service: 'calc', version: '1.0.0', url: 'http://x/mcp', state: 'ready', restarts: 0, updatedAt: NOW, ...(nodeId ? { nodeId } : {}) });
    const store = {
      routing: { findOne: async () => ({ service: 'calc', stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [], updatedAt: NOW }) },
      instances: { find: () => ({ toArray: async () => [inst('a-0', 'a'), inst('b-0', 'b'), inst('old-0')] }) },
      nodes: { find: (filter: { leaseUntil: { $lte: Date } }) => ({ toArray: async () => ([{ nodeId: 'b', leaseUntil: new Date(0) }].filter((n) => n.leaseUntil <= filter.leaseUntil.$lte)) }) },
    };
    const cache = new RoutingCache(store as unknown as ConstructorParameters<typeof RoutingCache>[0]);
    try {
      const routes = await cache.get('calc');
      assert.deepEqual(routes.ready.get('1.0.0')?.map((i) => i.instanceId), ['a-0', 'old-0']);
    } finally {
      cache.close();
    }
  });

  test('a relay forwards to its current target with a loopback Host header, and streams', async () => {
    const seen: string[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(req.headers.host ?? '');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      setImmediate(() => res.end('data: two\n\n'));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const target = (upstream.address() as AddressInfo).port;
    const relay = await startRelay('127.0.0.2');
    relay.target = target;
    try {
      const res = await fetch(`http://127.0.0.2:${relay.port}/mcp`, { method: 'POST', body: '{}' });
      assert.equal(await res.text(), 'data: one\n\ndata: two\n\n');
      assert.deepEqual(seen, [`127.0.0.1:${target}`]);
    } finally {
      await relay.close();
      upstream.close();
    }
  });
});
