import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker, type BreakerStateChange, type TripEvent } from '../../api/gateway/breaker.ts';
import { MetricsRecorder } from '../../api/gateway/metrics.ts';
import type { ExchangeOutcome } from '../../api/gateway/traffic.ts';

const OK: ExchangeOutcome = { httpStatus: 200, latencyMs: 5, timedOut: false, rpcErrors: 0, toolErrors: 0 };
const TOOL_ERROR: ExchangeOutcome = { ...OK, toolErrors: 1 };

/**
 * A recorder (memory only) feeding a breaker, on one fake clock: `t` is both the recorder's wall
 * clock and the breaker's monotonic one, and every exchange starts at the current `t`.
 */
function rig(thresholds: ConstructorParameters<typeof CircuitBreaker>[0] = {}) {
  const clock = { t: 1_000_000 };
  const recorder = new MetricsRecorder({ clock: () => clock.t });
  const breaker = new CircuitBreaker({ ...thresholds, clock: () => clock.t });
  recorder.onExchange((e) => breaker.observe(e));
  const trips: TripEvent[] = [];
  const changes: BreakerStateChange[] = [];
  breaker.onTrip((e) => trips.push(e));
  breaker.onStateChange((e) => changes.push(e));
  const send = (version: string, outcome: ExchangeOutcome, n = 1, service = 'calc') => {
    for (let i = 0; i < n; i++) recorder.exchangeEnd({ service, version, instanceId: `${version}-1`, startedAt: clock.t }, outcome);
  };
  return { clock, recorder, breaker, trips, changes, send };
}

test('a breaker stays closed below the minimum request count, however bad', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', TOOL_ERROR, 9);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  assert.equal(breaker.isOpen('calc', '2.0.0'), false);
  assert.equal(trips.length, 0);
});

test('it trips within the exchange that breaches the error rate, and tells its listener why', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', OK, 7);
  send('2.0.0', TOOL_ERROR, 2);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  send('2.0.0', TOOL_ERROR, 1); // the 10th request: 3/10 failed > 20 %
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(breaker.isOpen('calc', '2.0.0'), true);
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  assert.equal(trips.length, 1);
  const trip = trips[0]!;
  assert.equal(trip.service, 'calc');
  assert.equal(trip.version, '2.0.0');
  assert.match(trip.reasons[0]!, /error rate 30\.0%/);
  assert.equal(trip.stats.requests, 10);
  assert.equal(trip.stats.failures, 3);
  assert.ok(trip.at instanceof Date);
  send('2.0.0', TOOL_ERROR, 5);
  assert.equal(trips.length, 1, 'stragglers after the trip do not trip it again');
});

test('it trips on p99 latency too', () => {
  const { breaker, trips, send } = rig();
  send('2.0.0', { ...OK, latencyMs: 3_000 }, 10);
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.match(trips[0]!.reasons.join(' '), /p99 latency/);
});

test('versions and services are independent', () => {
  const { breaker, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  send('1.0.0', OK, 10);
  send('2.0.0', OK, 10, 'other');
  assert.equal(breaker.isOpen('calc', '2.0.0'), true);
  assert.equal(breaker.isOpen('calc', '1.0.0'), false);
  assert.equal(breaker.isOpen('other', '2.0.0'), false);
  assert.equal(breaker.allowRequest('calc', 'never-seen'), true);
});

test('thresholds per service: a laxer service tolerates what trips another', () => {
  const { breaker, send } = rig();
  const t = breaker.setThresholds('lax', { maxErrorRate: 0.6, minRequests: 5 });
  assert.equal(t.maxErrorRate, 0.6);
  assert.equal(t.maxP99Ms, 2_000, 'the rest stays at the defaults');
  assert.equal(breaker.thresholds('calc').maxErrorRate, 0.2);
  send('1.0.0', OK, 5, 'lax');
  send('1.0.0', TOOL_ERROR, 5, 'lax');
  assert.equal(breaker.isOpen('lax', '1.0.0'), false);
  send('1.0.0', TOOL_ERROR, 5, 'lax');
  assert.equal(breaker.isOpen('lax', '1.0.0'), true);
  assert.throws(() => breaker.setThresholds('bad', { maxErrorRate: 2 }), RangeError);
  const strict = new CircuitBreaker({ defaults: { minRequests: 3 } });
  assert.equal(strict.thresholds('any').minRequests, 3);
});

test('after the cooldown it goes half-open and lets exactly one probe through; success closes it', () => {
  const { clock, breaker, changes, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 4_999;
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  clock.t += 1;
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open');
  assert.equal(breaker.isOpen('calc', '2.0.0'), true, 'half-open is not yet trusted with new sessions');
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false, 'one probe at a time');
  clock.t += 10;
  send('2.0.0', OK);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  assert.deepEqual(
    changes.map((c) => `${c.from}->${c.to}`),
    ['closed->open', 'open->half-open', 'half-open->closed'],
  );
  // The failures that tripped it are still within 10 s, but were forgotten on closing.
  send('2.0.0', OK, 3);
  assert.equal(breaker.state('calc', '2.0.0'), 'closed');
});

test('a failed probe reopens it for another cooldown, without a second trip event', () => {
  const { clock, breaker, trips, changes, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  send('2.0.0', { ...OK, httpStatus: 502 });
  assert.equal(breaker.state('calc', '2.0.0'), 'open');
  assert.equal(trips.length, 1);
  assert.match(changes.at(-1)!.reasons[0]!, /probe failed \(HTTP 502\)/);
  clock.t += 4_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  clock.t += 1_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
});

test('in half-open, an exchange that began before the probe was let through does not decide', () => {
  const { clock, recorder, breaker } = rig();
  for (let i = 0; i < 10; i++) recorder.exchangeEnd({ service: 'calc', version: '2.0.0', instanceId: 'i', startedAt: clock.t }, TOOL_ERROR);
  const stragglerStart = clock.t + 100;
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  recorder.exchangeEnd({ service: 'calc', version: '2.0.0', instanceId: 'i', startedAt: stragglerStart }, OK);
  assert.equal(breaker.state('calc', '2.0.0'), 'half-open');
});

test('a probe whose exchange never ends does not keep the breaker shut forever', () => {
  const { clock, breaker, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  clock.t += 5_000;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true);
  clock.t += 4_999;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), false);
  clock.t += 1;
  assert.equal(breaker.allowRequest('calc', '2.0.0'), true, 'another probe after a further cooldown');
});

test('reset closes it by hand and, given the window, forgets the failures', () => {
  const { breaker, recorder, send } = rig();
  send('2.0.0', TOOL_ERROR, 10);
  assert.equal(breaker.isOpen('calc', '2.0.0'), true);
  breaker.reset('calc', '2.0.0', recorder.window('calc', '2.0.0'));
  assert.equal(breaker.isOpen('calc', '2.0.0'), false);
  send('2.0.0', OK);
  assert.equal(breaker.isOpen('calc', '2.0.0'), false);
  assert.deepEqual(
    breaker.list('calc').map((s) => [s.version, s.state]),
    [['2.0.0', 'closed']],
  );
});

test('a listener that throws changes nothing for the breaker or the exchange', () => {
  const { breaker, recorder, send } = rig();
  breaker.onTrip(() => {
    throw new Error('listener bug');
  });
  recorder.onExchange(() => {
    throw new Error('another bug');
  });
  assert.doesNotThrow(() => send('2.0.0', TOOL_ERROR, 10));
  assert.equal(breaker.isOpen('calc', '2.0.0'), true);
});
