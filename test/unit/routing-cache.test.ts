import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { RoutingCache } from '../../api/gateway/routing-cache.ts';
import type { RoutingDoc } from '../../core/documents.ts';

/** A store of routing documents in memory that counts the reads the cache makes. */
function countingStore(docs: Map<string, RoutingDoc>) {
  const reads = new Map<string, number>();
  const store = {
    routing: {
      findOne: async (filter: { service: string }) => {
        reads.set(filter.service, (reads.get(filter.service) ?? 0) + 1);
        return docs.get(filter.service) ?? null;
      },
    },
    instances: { find: () => ({ toArray: async () => [] }) },
    nodes: { find: () => ({ toArray: async () => [] }) },
  };
  return { store: store as unknown as ConstructorParameters<typeof RoutingCache>[0], reads };
}

const doc = (service: string): RoutingDoc => ({ service, stable: '1.0.0', weights: { '1.0.0': 100 }, pulled: [], updatedAt: new Date(0) });

describe('RoutingCache: unknown services', () => {
  test('an unknown name is read once per unknownMs on demand and never polled by the timer', async () => {
    const { store, reads } = countingStore(new Map([['known', doc('known')]]));
    const cache = new RoutingCache(store, { refreshMs: 5, maxAgeMs: 1_000, unknownMs: 60_000 });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await cache.get('nope')).routing, undefined);
      await cache.get('known');
      const knownBefore = reads.get('known')!;
      // Long enough for the timer to have refreshed the known service many times over.
      while (reads.get('known')! < knownBefore + 5) await sleep(5);
      assert.equal(reads.get('nope'), 1);
      assert.equal(cache.unknownCount, 1);
    } finally {
      cache.close();
    }
  });

  test('a service created later is found once unknownMs has passed, or at once after invalidate()', async () => {
    const docs = new Map<string, RoutingDoc>();
    const { store } = countingStore(docs);
    const cache = new RoutingCache(store, { unknownMs: 30 });
    try {
      assert.equal((await cache.get('late')).routing, undefined);
      docs.set('late', doc('late'));
      assert.equal((await cache.get('late')).routing, undefined, 'still the remembered miss');
      await sleep(40);
      assert.equal((await cache.get('late')).routing?.stable, '1.0.0');
      assert.equal(cache.unknownCount, 0);
      assert.equal((await cache.get('later')).routing, undefined);
      docs.set('later', doc('later'));
      cache.invalidate('later');
      assert.equal((await cache.get('later')).routing?.stable, '1.0.0');
    } finally {
      cache.close();
    }
  });

  test('at most maxUnknown names are remembered, the oldest forgotten first', async () => {
    const { store } = countingStore(new Map());
    const cache = new RoutingCache(store, { maxUnknown: 3 });
    try {
      for (let i = 0; i < 10; i++) await cache.get(`made-up-${i}`);
      assert.equal(cache.unknownCount, 3);
    } finally {
      cache.close();
    }
  });
});
