import assert from 'node:assert/strict';
import { test } from 'node:test';
import { breakerClient, CircuitBreaker, type AlertEvent, type BreakerStateChange, type TripEvent } from '../../api/gateway/breaker.ts';
import type { ExchangeOutcome } from '../../api/gateway/traffic.ts';

const OK: ExchangeOutcome = { httpStatus: 200, latencyMs: 5, timedOut: false, rpcErrors: 0, toolErrors: 0 };
const TOOL_ERROR: ExchangeOutcome = { ...OK, toolErrors: 1 };
const HTTP_500: ExchangeOutcome = { ...OK, httpStatus: 500 };
const CALL = ['tools/call'];

interface SendOptions {
  service?: string;
  /** Exchanges go round these client sessions. */
  clients?: string[];
  methods?: string[];
}

/** A breaker on a fake monotonic clock; every exchange starts at the current `t`. */
function rig(opts: ConstructorParameters<typeof CircuitBreaker>[0] = {}) {
  const clock = { t: 1_000_000 };
  const breaker = new CircuitBreaker({ ...opts, clock: () => clock.t });
  const trips: TripEvent[] = [];
  const alerts: AlertEvent[] = [];
  const changes: BreakerStateChange[] = [];
  breaker.onTrip((e) => trips.push(e));
  breaker.onAlert((e) => alerts.push(e));
  breaker.onStateChange((e) => changes.push(e));
  const send = (version: string, outcome: ExchangeOutcome, n = 1, o: SendOptions = {}) => {
    const clients = o.clients ?? ['a', 'b', 'c'];
    for (let i = 0; i < n; i++) {
      breaker.exchangeEnd(
        { service: o.service ?? 'calc', version, instanceId: `${version}-1`, sessionId: clients[i % clients.length]!, methods: o.methods ?? CALL, startedAt: clock.t },
        outcome,
      );
    }
  };
  return { clock, breaker, trips, alerts, changes, send };
}

test('a breaker stays closed below the minimum request count, however bad', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', TOOL_ERROR, 9);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  assert.equal(trips.length, 0);
});

test('it trips within the exchange that breaches the error rate, and tells its listener why', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', OK, 7);
  send('2.0.0', TOOL_ERROR, 2);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  send('2.0.0', TOOL_ERROR, 3);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  assert.equal(trips.length, 1);
  const trip = trips[0]!;
  assert.match(trip.reasons[0]!, /error rate 36\.4% > 20\.0% \(4\/11 failed\)/);
  assert.equal(trip.unanswered, false, 'tool errors are answers');
  send('2.0.0', TOOL_ERROR, 5);
  assert.equal(trips.length, 1, 'stragglers after the trip do not trip it again');
});

test('only work requests count: initialize, lists, notifications, DELETE and a client’s 4xx neither hide nor cause a breach', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', OK, 200, { methods: ['initialize'] });
  send('2.0.0', OK, 200, { methods: ['tools/list'] });
  send('2.0.0', { ...OK, httpStatus: 202 }, 200, { methods: [] });
  send('2.0.0', { ...OK, httpStatus: 400 }, 50);
  send('2.0.0', { ...OK, httpStatus: 404 }, 50);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  send('2.0.0', TOOL_ERROR, 10);
  assert.equal(breaker.state('calc', '2.0.0'), 'open', 'ten failed calls among 700 successful non-work exchanges still trip it');
  assert.match(trips[0]!.reasons[0]!, /10\/10 failed/);
  for (const method of ['resources/read', 'prompts/get', 'completion/complete']) {
    const r = rig();
    r.send('2.0.0', TOOL_ERROR, 10, { methods: [method] });
    assert.equal(r.breaker.state('calc', '2.0.0'), 'open', method);
  }
});

test('a version that leaves even an initialize unanswered is failing: no response, 5xx and timeouts count whatever was asked', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', HTTP_500, 10, { methods: ['initialize'] });
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(trips[0]!.unanswered, true);
  assert.equal(breaker.failFast('calc', '2.0.0'), true);
});

test('a canary is judged on the errors it adds to the stable version’s rate over the same window', () => {
  const { breaker, trips, send } = rig();
  breaker.setStable('calc', '1.0.0');
  // A tool that fails half the time everywhere: not the canary's fault.
  send('1.0.0', OK, 20);
  send('1.0.0', TOOL_ERROR, 20);
  send('2.0.0', OK, 10);
  send('2.0.0', TOOL_ERROR, 10);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  // The canary now fails 75 %: 25 points above stable's 50 %, beyond the 20 allowed.
  send('2.0.0', TOOL_ERROR, 20);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.match(trips[0]!.reasons[0]!, /above the stable version's 50\.0%/);
});

test('the stable version never opens for tool-level errors: it raises an alert (once per cooldown) and keeps serving', () => {
  const { clock, breaker, trips, alerts, send } = rig();
  breaker.setStable('calc', '1.0.0');
  send('1.0.0', TOOL_ERROR, 30);
  assert.equal(breaker.state('calc', '1.0.0'), 'closed');
  assert.equal(breaker.allowRequest('calc', '1.0.0'), true);
  assert.equal(trips.length, 0);
  assert.equal(alerts.length, 1);
  assert.match(alerts[0]!.reasons[0]!, /error rate 100\.0%/);
  clock.t += 5_000;
  send('1.0.0', TOOL_ERROR, 10);
  assert.equal(alerts.length, 2, 'alerted again after a cooldown while it still breaches');
  assert.match(breaker.list('calc')[0]!.alert!.reasons[0]!, /error rate/);
});

test('the stable version that stops answering does open, and refuses fast', () => {
  const { breaker, trips, send } = rig();
  breaker.setStable('calc', '1.0.0');
  send('1.0.0', { ...OK, httpStatus: 0 }, 10);
  assert.equal(breaker.state('calc', '1.0.0'), 'open');
  assert.equal(trips[0]!.unanswered, true);
  assert.equal(breaker.failFast('calc', '1.0.0'), true);
});

test('an open version that answers with errors is not failed fast: with nothing else left the gateway passes requests on', () => {
  const { breaker, send } = rig();
  send('1.0.0', TOOL_ERROR, 10);
  assert.equal(breaker.state('calc', '1.0.0'), 'open');
  assert.equal(breaker.failFast('calc', '1.0.0'), false);
  assert.equal(breaker.list('calc')[0]!.failFast, false);
});

test('one client’s errors cannot trip a version: the breach must hold without the client with the most failures', () => {
  const { breaker, send } = rig();
  send('2.0.0', OK, 30, { clients: ['good-1', 'good-2', 'good-3'] });
  send('2.0.0', TOOL_ERROR, 100, { clients: ['bad-arguments'] });
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  // The same errors spread over the clients are the version's.
  send('2.0.0', TOOL_ERROR, 30, { clients: ['good-1', 'good-2', 'good-3'] });
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
});

test('the client is its X-Mcpship-Client name or credential, else its session, else its address key', () => {
  const base = { service: 's', version: 'v', instanceId: 'i', startedAt: 0 };
  assert.equal(breakerClient({ ...base, clientKey: 'client:agent-7', sessionId: 'x' }), 'client:agent-7');
  assert.equal(breakerClient({ ...base, clientKey: 'cred:abc', sessionId: 'x' }), 'cred:abc');
  assert.equal(breakerClient({ ...base, clientKey: 'addr:h', sessionId: 'x' }), 'session:x');
  assert.equal(breakerClient({ ...base, clientKey: 'addr:h' }), 'addr:h');
});

test('thresholds per service: a laxer service tolerates what trips another', () => {
  const { breaker, send } = rig();
  const t = breaker.setThresholds('lax', { maxErrorRate: 0.6, minRequests: 5 });
  assert.equal(t.maxErrorRate, 0.6);
  assert.equal(t.maxP99Ms, 2_000, 'the rest stays at the defaults');
  send('1.0.0', OK, 6, { service: 'lax' });
  send('1.0.0', TOOL_ERROR, 6, { service: 'lax' });
  assert.equal(breaker.isOpen('lax', '1.0.0'), false);
  send('1.0.0', TOOL_ERROR, 12, { service: 'lax' });
  assert.equal(breaker.isOpen('lax', '1.0.0'), true);
  assert.throws(() => breaker.setThresholds('bad', { maxErrorRate: 2 }), /maxErrorRate must be within 0\.\.1/);
});

test('half-open closes only after halfOpenSuccesses successful work requests; an initialize proves nothing', () => {
  const { clock, breaker, changes, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 4_999;
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  clock.t += 1;
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open');
  assert.equal(breaker.isOpen('calc', '2.0.0'), true, 'half-open is not yet trusted with new sessions');
  for (let i = 0; i < 3; i++) assert.equal(breaker.allowRequest('calc', '2.0.0'), true, `probe ${i + 1}`);
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false, 'as many probes at a time as successes close it');
  clock.t += 10;
  send('2.0.0', OK, 1, { methods: ['initialize'] });
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open', 'an initialize succeeds on almost any build');
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true, 'its end frees a probe place');
  send('2.0.0', OK, 2);
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open');
  send('2.0.0', OK, 1);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  assert.deepEqual(
    changes.map((c) => `${c.from}->${c.to}`),
    ['closed->open', 'open->half-open', 'half-open->closed'],
  );
  send('2.0.0', OK, 3);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed', 'the old failures were forgotten on closing');
});

test('a failed work request in half-open reopens it for another cooldown, without a second trip event', () => {
  const { clock, breaker, trips, changes, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  send('2.0.0', OK, 2);
  send('2.0.0', { ...OK, httpStatus: 502 });
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(trips.length, 1);
  assert.match(changes.at(-1)!.reasons[0]!, /probe failed \(HTTP 502\)/);
  clock.t += 4_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  clock.t += 1_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
});

test('in half-open, an exchange that began before it turned half-open does not decide', () => {
  const { clock, breaker, send } = rig({ defaults: { halfOpenSuccesses: 1 } });
  send('2.0.0', TOOL_ERROR, 10);
  const stragglerStart = clock.t + 100;
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  breaker.exchangeEnd({ service: 'calc', version: '2.0.0', instanceId: 'i', sessionId: 'a', methods: CALL, startedAt: stragglerStart }, OK);
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open');
});

test('a probe whose exchange never ends does not keep the breaker shut forever', () => {
  const { clock, breaker, send } = rig({ defaults: { halfOpenSuccesses: 1 } });
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  clock.t += 4_999;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  clock.t += 1;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true, 'another probe after a further cooldown');
});

test('it trips on p99 latency too, unless the stable version is as slow', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', { ...OK, latencyMs: 3_000 }, 10);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.match(trips[0]!.reasons.join(' '), /p99 latency/);
  const slowEverywhere = rig();
  slowEverywhere.breaker.setStable('calc', '1.0.0');
  slowEverywhere.send('1.0.0', { ...OK, latencyMs: 3_000 }, 10);
  slowEverywhere.send('2.0.0', { ...OK, latencyMs: 3_000 }, 10);
  assert.equal(slowEverywhere.breaker.state('calc', '2.0.0'), 'closed');
});

test('reset closes it by hand and forgets the failures; listeners that throw change nothing', () => {
  const { breaker, send } = rig();
  breaker.onTrip(() => {
    throw new Error('listener bug');
  });
  assert.doesNotThrow(() => send('2.0.0', TOOL_ERROR, 10));
  assert.equal(breaker.isOpen('calc', '2.0.0'), true);
  breaker.reset('calc', '2.0.0');
  assert.equal(breaker.isOpen('calc', '2.0.0'), false);
  send('2.0.0', OK);
  assert.deepEqual(
    breaker.list('calc').map((s) => [s.version, s.state]),
    [['2.0.0', 'closed']],
  );
});

// The breaker judges only windows that hold a failure or a slow exchange (a healthy window needs no
// snapshot); these pin that nothing is missed by it.
test('failures below the minimum count trip it on the success that brings the count up, within that exchange', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', TOOL_ERROR, 9);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  send('2.0.0', OK, 1);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(trips.length, 1);
});

test('thresholds made stricter count the exchanges already in the window: the next one, fast as it is, trips it', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', { ...OK, latencyMs: 150 }, 20);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed', '150 ms is fast for the default p99 limit');
  breaker.setThresholds('calc', { maxP99Ms: 100 });
  send('2.0.0', OK, 1);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.match(trips[0]!.reasons.join(' '), /p99 latency \d+ ms > 100 ms/);
});

test('a failure leaves the window after windowMs: the same failures again are judged afresh', () => {
  const { clock, breaker, trips, send } = rig();
  send('2.0.0', OK, 20);
  send('2.0.0', TOOL_ERROR, 1);
  clock.t += 11_000 + 1_000;
  send('2.0.0', OK, 20);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  send('2.0.0', TOOL_ERROR, 6);
  assert.equal(breaker.state('calc', '2.0.0'), 'open', '6 of 26 failed in the window');
  assert.equal(trips.length, 1);
});
