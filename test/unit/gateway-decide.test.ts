import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Decider, DEFAULT_STEP_INTERVAL_MS, REFUSED_SKIP_MS, type BreakerView, type RequestFacts } from '../../api/gateway/decide.ts';
import type { ServiceRoutes } from '../../api/gateway/routing-cache.ts';
import type { SessionRoute } from '../../api/gateway/session-table.ts';
import type { InstanceDoc, RoutingDoc } from '../../core/documents.ts';

const instance = (version: string, instanceId: string): InstanceDoc => ({ instanceId, service: 'svc', version, url: `http://127.0.0.1/${instanceId}`, state: 'ready', restarts: 0, updatedAt: new Date(0) });

function decider(opts: { routing?: Partial<RoutingDoc>; ready?: InstanceDoc[]; sessions?: Record<string, SessionRoute>; open?: string[]; probes?: number; rand?: () => number; now?: () => number }) {
  const routing: RoutingDoc | undefined = opts.routing ? { service: 'svc', weights: {}, pulled: [], updatedAt: new Date(0), ...opts.routing } : undefined;
  const ready = new Map<string, InstanceDoc[]>();
  for (const i of opts.ready ?? []) ready.set(i.version, [...(ready.get(i.version) ?? []), i]);
  const routes: ServiceRoutes = { service: 'svc', routing, ready, loadedAt: 0 };
  const open = new Set(opts.open ?? []);
  let probes = opts.probes ?? 0;
  const breaker: BreakerView = {
    isOpen: (_s, v) => open.has(v),
    allowRequest: (_s, v) => !open.has(v) || (probes > 0 && probes-- > 0),
  };
  return new Decider({
    cache: { get: async () => routes },
    sessions: { get: async (id) => opts.sessions?.[id] },
    breaker,
    rand: opts.rand ?? (() => 0.5),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

const init: RequestFacts = { service: 'svc', method: 'POST', initialize: true, batch: false, rpcId: 1 };
const call = (sessionId?: string): RequestFacts => ({ service: 'svc', method: 'POST', initialize: false, batch: false, rpcId: 2, ...(sessionId ? { sessionId } : {}) });
const canary = { stable: '1.0.0', weights: { '1.0.0': 90, '2.0.0': 10 } };
const pool = [instance('1.0.0', 'a'), instance('1.0.0', 'b'), instance('2.0.0', 'c')];

describe('Decider', () => {
  test('unknown service, and a service with nothing routable, are 404', async () => {
    const none = await decider({}).decide(init);
    assert.ok(none.kind === 'reject' && none.status === 404 && none.body.id === 1);
    const empty = await decider({ routing: { weights: { '1.0.0': 0 } } }).decide(init);
    assert.ok(empty.kind === 'reject' && empty.status === 404);
  });

  test('new sessions: round robin within the version; a version without ready instances is skipped for stable', async () => {
    const d = decider({ routing: canary, ready: pool, rand: () => 0.99 });
    const picks = [];
    for (let i = 0; i < 4; i++) {
      const r = await d.decide(init);
      assert.ok(r.kind === 'proxy' && r.opensSession);
      picks.push(r.instance.instanceId);
    }
    assert.deepEqual(picks, ['a', 'b', 'a', 'b']);
    const noCanaryInstances = decider({ routing: canary, ready: pool.slice(0, 2), rand: () => 0 });
    const r = await noCanaryInstances.decide(init);
    assert.ok(r.kind === 'proxy' && r.version === '1.0.0');
    const nothingReady = await decider({ routing: canary, ready: [], rand: () => 0.99 }).decide(init);
    assert.ok(nothingReady.kind === 'reject' && nothingReady.status === 503);
  });

  test('sessions: pinned; unknown, pulled or instance gone → 404 (and the session is closed)', async () => {
    const sessions = { s1: { service: 'svc', version: '2.0.0', instanceId: 'c' }, s2: { service: 'svc', version: '1.0.0', instanceId: 'zz' }, s3: { service: 'other', version: '1.0.0', instanceId: 'a' } };
    const d = decider({ routing: canary, ready: pool, sessions });
    const pinned = await d.decide(call('s1'));
    assert.ok(pinned.kind === 'proxy' && pinned.instance.instanceId === 'c' && pinned.session?.sessionId === 's1' && !pinned.opensSession);
    for (const id of ['nope', 's3']) {
      const r = await d.decide(call(id));
      assert.ok(r.kind === 'reject' && r.status === 404 && r.closeSession === undefined, id);
    }
    const gone = await d.decide(call('s2'));
    assert.ok(gone.kind === 'reject' && gone.status === 404 && gone.closeSession === 's2');
    const pulled = await decider({ routing: { ...canary, pulled: ['2.0.0'] }, ready: pool, sessions }).decide(call('s1'));
    assert.ok(pulled.kind === 'reject' && pulled.status === 404 && pulled.closeSession === 's1');
  });

  test('breaker: open canary → stable for new sessions, 404 for its sessions; open and alone → 503 except probes', async () => {
    const sessions = { s1: { service: 'svc', version: '2.0.0', instanceId: 'c' }, s2: { service: 'svc', version: '1.0.0', instanceId: 'a' } };
    const d = decider({ routing: canary, ready: pool, sessions, open: ['2.0.0'], rand: () => 0 });
    const fresh = await d.decide(init);
    assert.ok(fresh.kind === 'proxy' && fresh.version === '1.0.0');
    const old = await d.decide(call('s1'));
    assert.ok(old.kind === 'reject' && old.status === 404 && old.closeSession === 's1');

    const alone = decider({ routing: { weights: { '1.0.0': 100 } }, ready: pool, sessions, open: ['1.0.0'], probes: 1 });
    const probe = await alone.decide(init);
    assert.ok(probe.kind === 'proxy' && probe.version === '1.0.0', 'the probe goes through');
    const refused = await alone.decide(init);
    assert.ok(refused.kind === 'reject' && refused.status === 503 && refused.body.id === 1);
    const session = await alone.decide(call('s2'));
    assert.ok(session.kind === 'reject' && session.status === 503);
  });

  test('sessionless requests are refused once the version is known to have sessions, routed by weight when it has none', async () => {
    const d = decider({ routing: canary, ready: pool, rand: () => 0.99 });
    const unknown = await d.decide(call());
    assert.ok(unknown.kind === 'proxy', 'not known yet: the instance answers for itself');
    d.noteSessionMode('svc', '1.0.0', 'stateful');
    const refused = await d.decide(call());
    assert.ok(refused.kind === 'reject' && refused.status === 400);
    d.noteSessionMode('svc', '1.0.0', 'stateless');
    const routed = await d.decide(call());
    assert.ok(routed.kind === 'proxy' && routed.version === '1.0.0' && !routed.opensSession);
  });

  test('batches: by the negotiated version first, else the header', async () => {
    const sessions = { old: { service: 'svc', version: '1.0.0', instanceId: 'a', protocolVersion: '2025-03-26' }, new: { service: 'svc', version: '1.0.0', instanceId: 'a', protocolVersion: '2025-06-18' } };
    const d = decider({ routing: canary, ready: pool, sessions });
    const batch = (sessionId: string, protocolVersion?: string): RequestFacts => ({ ...call(sessionId), batch: true, rpcId: null, ...(protocolVersion ? { protocolVersion } : {}) });
    assert.equal((await d.decide(batch('old', '2025-11-25'))).kind, 'proxy');
    const refused = await d.decide(batch('new'));
    assert.ok(refused.kind === 'reject' && refused.status === 400 && refused.body.error.code === -32600);
  });

  test('stateless requests: never refused for want of a session, whatever the version taught; the session header is not theirs', async () => {
    const sessions = { s1: { service: 'svc', version: '2.0.0', instanceId: 'c' } };
    const d = decider({ routing: canary, ready: pool, sessions, rand: () => 0.99 });
    d.noteSessionMode('svc', '1.0.0', 'stateful');
    d.noteSessionMode('svc', '2.0.0', 'stateful');
    const stateless: RequestFacts = { ...call(), generation: 'stateless', clientKey: 'client:a' };
    const r = await d.decide(stateless);
    assert.ok(r.kind === 'proxy' && !r.opensSession && r.session === undefined);
    const withStrayHeader = await d.decide({ ...stateless, sessionId: 'unknown-session' });
    assert.ok(withStrayHeader.kind === 'proxy' && withStrayHeader.version === r.version, 'routed by key, not refused as an unknown session');
    const legacy = await d.decide(call());
    assert.ok(legacy.kind === 'reject' && legacy.status === 400, 'a session-revision request without a session is still refused');
    const batch = await d.decide({ ...stateless, batch: true, rpcId: null, protocolVersion: '2026-07-28' });
    assert.equal(batch.kind, 'proxy', 'the server answers a stateless batch for itself');
  });

  test('keyed requests: one client, one version and one instance; clients spread by weight', async () => {
    const wide = [...pool, instance('2.0.0', 'd')];
    const d = decider({ routing: { stable: '1.0.0', weights: { '1.0.0': 50, '2.0.0': 50 } }, ready: wide, rand: () => 0 });
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 40; i++) {
        const r = await d.decide({ ...call(), generation: 'stateless', clientKey: `client:${i}` });
        assert.ok(r.kind === 'proxy');
        seen.set(`client:${i}`, (seen.get(`client:${i}`) ?? new Set()).add(`${r.version}/${r.instance.instanceId}`));
      }
    }
    assert.ok([...seen.values()].every((s) => s.size === 1), 'each client kept its version and instance');
    const versions = new Set([...seen.values()].map((s) => [...s][0]!.split('/')[0]));
    assert.deepEqual([...versions].sort(), ['1.0.0', '2.0.0'], 'rand() plays no part: both versions get clients');
  });

  test('ttlCapMs: set while more than one version is routable, from the step interval when the routing has it', async () => {
    const one = await decider({ routing: { stable: '1.0.0', weights: { '1.0.0': 100 } }, ready: pool }).decide(init);
    assert.ok(one.kind === 'proxy' && one.ttlCapMs === undefined);
    const two = await decider({ routing: canary, ready: pool }).decide(init);
    assert.ok(two.kind === 'proxy' && two.ttlCapMs === DEFAULT_STEP_INTERVAL_MS);
    const stepped = await decider({ routing: { ...canary, stepIntervalMs: 2_000 } as Partial<RoutingDoc>, ready: pool }).decide(init);
    assert.ok(stepped.kind === 'proxy' && stepped.ttlCapMs === 2_000);
    const pulled = await decider({ routing: { ...canary, pulled: ['2.0.0'] }, ready: pool }).decide(init);
    assert.ok(pulled.kind === 'proxy' && pulled.ttlCapMs === undefined, 'a pulled canary is not routable');
  });

  test('forced version: any routable version, 404 when unknown or pulled', async () => {
    const d = decider({ routing: { ...canary, weights: { '1.0.0': 100, '2.0.0': 0 } }, ready: pool });
    const forced = await d.decide({ ...init, forcedVersion: '2.0.0' });
    assert.ok(forced.kind === 'proxy' && forced.version === '2.0.0');
    const unknown = await d.decide({ ...init, forcedVersion: '9.9.9' });
    assert.ok(unknown.kind === 'reject' && unknown.status === 404);
  });

  test('an instance that refused a connection gets no new traffic for a while; a retry prefers the version it was sent to', async () => {
    let now = 0;
    const d = decider({ routing: canary, ready: pool, rand: () => 0.99, now: () => now });
    const picks = async (facts: RequestFacts, n: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await d.decide(facts);
        assert.ok(r.kind === 'proxy');
        ids.push(r.instance.instanceId);
      }
      return ids;
    };
    d.noteRefused('a');
    assert.deepEqual(await picks(init, 3), ['b', 'b', 'b']);
    for (let k = 0; k < 20; k++) {
      const keyed = await picks({ ...call(), generation: 'stateless', clientKey: `client:${k}` }, 1);
      assert.notEqual(keyed[0], 'a', 'keyed clients move off the refusing instance too');
    }
    // Every instance of the stable version refused: a retry that prefers it goes to the canary instead.
    d.noteRefused('b');
    const retry = await d.decide({ ...init, preferVersion: '1.0.0' });
    assert.ok(retry.kind === 'proxy' && retry.version === '2.0.0' && retry.instance.instanceId === 'c');
    // The preferred version wins over the weights while it has a usable instance.
    now += REFUSED_SKIP_MS;
    const back = await d.decide({ ...init, preferVersion: '2.0.0' });
    assert.ok(back.kind === 'proxy' && back.version === '2.0.0');
    assert.deepEqual(new Set(await picks(init, 2)), new Set(['a', 'b']), 'the refusals are forgotten after REFUSED_SKIP_MS');
    // All refused: still tried, rather than every request refused.
    for (const id of ['a', 'b', 'c']) d.noteRefused(id);
    assert.equal((await picks(init, 2)).length, 2);
  });

  test('a refused instance does not move sessions: requests bound to one still go to it', async () => {
    const d = decider({ routing: canary, ready: pool, sessions: { s1: { service: 'svc', version: '1.0.0', instanceId: 'a' } } });
    d.noteRefused('a');
    const r = await d.decide(call('s1'));
    assert.ok(r.kind === 'proxy' && r.instance.instanceId === 'a');
  });
});
