import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addExchange,
  analyseStep,
  ClientWindow,
  countsForHealth,
  addToHistogram,
  countMessageErrors,
  DEFAULT_THRESHOLDS,
  emptyCounts,
  emptyHistogram,
  errorRate,
  evaluateHealth,
  HISTOGRAM_SLOTS,
  isFailedExchange,
  LATENCY_BOUNDS_MS,
  latencySlot,
  MAX_CLIENTS_PER_SLOT,
  mergeCounts,
  mergeHistograms,
  percentile,
  resolveThresholds,
  RollingWindow,
  successRate,
  type ExchangeResult,
  type HealthCounts,
} from '../../core/health.ts';

const ok = (latencyMs = 10): ExchangeResult => ({ httpStatus: 200, latencyMs, timedOut: false, rpcErrors: 0, toolErrors: 0 });
const failed = (over: Partial<ExchangeResult>): ExchangeResult => ({ ...ok(), ...over });

function countsOf(results: ExchangeResult[]): HealthCounts {
  const c = emptyCounts();
  for (const r of results) addExchange(c, r);
  return c;
}

test('latency bounds are strictly increasing and slots put a value at or under its bound', () => {
  for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) assert.ok(LATENCY_BOUNDS_MS[i]! > LATENCY_BOUNDS_MS[i - 1]!);
  assert.equal(HISTOGRAM_SLOTS, LATENCY_BOUNDS_MS.length + 1);
  assert.equal(latencySlot(0), 0);
  assert.equal(latencySlot(1), 0);
  assert.equal(latencySlot(1.01), 1);
  assert.equal(latencySlot(2000), LATENCY_BOUNDS_MS.indexOf(2000));
  assert.equal(latencySlot(2000.5), LATENCY_BOUNDS_MS.indexOf(2000) + 1);
  assert.equal(latencySlot(10 ** 9), LATENCY_BOUNDS_MS.length, 'above every bound: the overflow slot');
});

test('histograms add and merge slot by slot; a short stored histogram merges as zeros', () => {
  const a = emptyHistogram();
  const b = emptyHistogram();
  addToHistogram(a, 4);
  addToHistogram(a, 4);
  addToHistogram(b, 4, 3);
  addToHistogram(b, 250);
  mergeHistograms(a, b);
  assert.equal(a[latencySlot(4)], 5);
  assert.equal(a[latencySlot(250)], 1);
  assert.equal(a.reduce((x, y) => x + y, 0), 6);
  mergeHistograms(a, [1]);
  assert.equal(a[0], 1);
  assert.equal(a.length, HISTOGRAM_SLOTS);
});

test('percentiles: null without samples, inside the right slot, monotone in q', () => {
  assert.equal(percentile(emptyHistogram(), 0.5), null);
  const h = emptyHistogram();
  for (let i = 0; i < 90; i++) addToHistogram(h, 12); // slot (10, 15]
  for (let i = 0; i < 9; i++) addToHistogram(h, 400); // slot (300, 500]
  addToHistogram(h, 2500); // slot (2000, 3000]
  const p50 = percentile(h, 0.5)!;
  const p95 = percentile(h, 0.95)!;
  const p99 = percentile(h, 0.99)!;
  const p100 = percentile(h, 1)!;
  assert.ok(p50 > 10 && p50 <= 15, `p50 ${p50}`);
  assert.ok(p95 > 300 && p95 <= 500, `p95 ${p95}`);
  assert.ok(p99 > 300 && p99 <= 500, `p99 ${p99}`);
  assert.ok(p100 > 2000 && p100 <= 3000, `p100 ${p100}`);
  assert.ok(p50 <= p95 && p95 <= p99 && p99 <= p100);
  const over = emptyHistogram();
  addToHistogram(over, 10 ** 7);
  assert.equal(percentile(over, 0.99), LATENCY_BOUNDS_MS.at(-1), 'beyond the last bound reads as the last bound');
});

test('a p99 just under a bound stays under it; two slow requests in a hundred lift it over', () => {
  const h = emptyHistogram();
  for (let i = 0; i < 100; i++) addToHistogram(h, 1500);
  assert.ok(percentile(h, 0.99)! <= 2000);
  const h2 = emptyHistogram();
  for (let i = 0; i < 98; i++) addToHistogram(h2, 1500);
  addToHistogram(h2, 2600);
  addToHistogram(h2, 2600);
  assert.ok(percentile(h2, 0.99)! > 2000);
});

test('an exchange fails on a timeout, a 5xx, no response, an RPC error or a tool error; a 4xx is the client’s', () => {
  assert.equal(isFailedExchange(ok()), false);
  assert.equal(isFailedExchange(failed({ httpStatus: 404 })), false);
  assert.equal(isFailedExchange(failed({ httpStatus: 502 })), true);
  assert.equal(isFailedExchange(failed({ httpStatus: 0 })), true);
  assert.equal(isFailedExchange(failed({ timedOut: true })), true);
  assert.equal(isFailedExchange(failed({ rpcErrors: 1 })), true);
  assert.equal(isFailedExchange(failed({ toolErrors: 2 })), true);
});

test('counts: one failed exchange counts once in the error rate, each kind in its own counter', () => {
  const c = countsOf([ok(5), ok(5), failed({ httpStatus: 500, rpcErrors: 1 }), failed({ toolErrors: 2 }), failed({ timedOut: true, httpStatus: 504, latencyMs: 30_000 })]);
  assert.equal(c.requests, 5);
  assert.equal(c.failures, 3);
  assert.equal(c.unanswered, 2);
  assert.equal(c.httpErrors, 2);
  assert.equal(c.rpcErrors, 1);
  assert.equal(c.toolErrors, 2);
  assert.equal(c.timeouts, 1);
  assert.equal(c.latencySumMs, 5 + 5 + 10 + 10 + 30_000);
  assert.equal(errorRate(c), 3 / 5);
  assert.equal(successRate(c), 2 / 5);
  assert.equal(successRate(emptyCounts()), null);
  assert.equal(errorRate(emptyCounts()), null);
});

test('merging counts adds them; a stored bucket without failures is bounded by its error counters', () => {
  const a = countsOf([ok(), failed({ rpcErrors: 1 })]);
  const b = countsOf([ok(), ok(), failed({ httpStatus: 503 })]);
  const m = mergeCounts(emptyCounts(), a);
  mergeCounts(m, b);
  assert.equal(m.requests, 5);
  assert.equal(m.failures, 2);
  assert.equal(m.latencyHist.reduce((x, y) => x + y, 0), 5);
  const legacy = mergeCounts(emptyCounts(), { requests: 4, httpErrors: 1, rpcErrors: 1, toolErrors: 0, timeouts: 0, latencyHist: [], latencySumMs: 0 });
  assert.equal(legacy.failures, 2);
  assert.equal(legacy.unanswered, 1, 'bounded by the HTTP errors and timeouts');
});

test('the rolling window keeps the last span of buckets and forgets older ones without a timer', () => {
  const w = new RollingWindow(1_000, 10_000);
  const t0 = 1_000_000;
  w.record(t0, failed({ rpcErrors: 1 }));
  w.record(t0 + 500, ok());
  w.record(t0 + 5_000, ok());
  assert.equal(w.snapshot(t0 + 5_000, 10_000).requests, 3);
  assert.equal(w.snapshot(t0 + 5_000, 2_000).requests, 1, 'only the buckets overlapping the last 2 s');
  assert.equal(w.snapshot(t0 + 12_000, 10_000).requests, 1, 'the first bucket has rolled out');
  // A slot reused 11 buckets later must not carry its old counts.
  w.record(t0 + 11_000, ok());
  const s = w.snapshot(t0 + 11_000, 10_000);
  assert.equal(s.requests, 2);
  assert.equal(s.failures, 0);
  assert.equal(w.snapshot(t0 + 60_000, 10_000).requests, 0);
  w.reset();
  assert.equal(w.snapshot(t0 + 11_000, 10_000).requests, 0);
});

test('thresholds: defaults, partial overlay, and values that cannot be meant are refused', () => {
  assert.deepEqual(resolveThresholds(), { maxErrorRate: 0.2, maxP99Ms: 2000, minRequests: 10, windowMs: 10_000, cooldownMs: 5_000, halfOpenSuccesses: 3 });
  assert.deepEqual(resolveThresholds({ maxErrorRate: 0.5 }), { ...DEFAULT_THRESHOLDS, maxErrorRate: 0.5 });
  assert.throws(() => resolveThresholds({ maxErrorRate: 1.5 }), /maxErrorRate must be within 0\.\.1, got 1\.5/);
  assert.throws(() => resolveThresholds({ minRequests: 0 }), /minRequests must be an integer >= 1/);
  assert.throws(() => resolveThresholds({ windowMs: 120_000 }), /windowMs must be within/);
  assert.throws(() => resolveThresholds({ maxP99Ms: Number.NaN }), /maxP99Ms must be > 0/);
  assert.throws(() => resolveThresholds({ halfOpenSuccesses: 0 }), /halfOpenSuccesses must be an integer >= 1/);
});

test('what counts for health: work requests either way, anything left unanswered, never a 4xx', () => {
  const cases: [string[] | undefined, ExchangeResult, boolean][] = [
    [['tools/call'], ok(), true],
    [['resources/read'], failed({ rpcErrors: 1 }), true],
    [['prompts/get'], ok(), true],
    [['completion/complete'], ok(), true],
    [['initialize'], ok(), false],
    [['tools/list'], failed({ rpcErrors: 1 }), false],
    [[], failed({ httpStatus: 202 }), false],
    [undefined, ok(), false],
    [['initialize'], failed({ httpStatus: 500 }), true],
    [[], failed({ httpStatus: 0 }), true],
    [['ping'], failed({ timedOut: true, httpStatus: 504 }), true],
    [['tools/call'], failed({ httpStatus: 400 }), false],
    [['tools/call'], failed({ httpStatus: 404 }), false],
    [['tools/call'], failed({ httpStatus: 404, timedOut: true }), true],
    [['tools/list', 'tools/call'], ok(), true],
  ];
  for (const [methods, result, counts] of cases) assert.equal(countsForHealth(methods, result), counts, `${JSON.stringify(methods)} ${JSON.stringify(result)}`);
});

test('evaluateHealth: too few requests is healthy; error rate and p99 breaches each give a reason', () => {
  const few = evaluateHealth(countsOf(Array.from({ length: 9 }, () => failed({ httpStatus: 500 }))));
  assert.equal(few.healthy, true);
  assert.equal(few.judged, false);
  assert.equal(few.stats.requests, 9);

  const errors = evaluateHealth(countsOf([...Array.from({ length: 7 }, () => ok()), ...Array.from({ length: 3 }, () => failed({ toolErrors: 1 }))]));
  assert.equal(errors.healthy, false);
  assert.equal(errors.unanswered, false);
  assert.equal(errors.reasons.length, 1);
  assert.match(errors.reasons[0]!, /error rate 30\.0% > 20\.0%/);

  const atLimit = evaluateHealth(countsOf([...Array.from({ length: 8 }, () => ok()), ...Array.from({ length: 2 }, () => failed({ rpcErrors: 1 }))]));
  assert.equal(atLimit.healthy, true, 'exactly at the limit is not a breach');

  const slow = evaluateHealth(countsOf(Array.from({ length: 20 }, () => ok(4_000))), { maxP99Ms: 2_000 });
  assert.equal(slow.healthy, false);
  assert.equal(slow.unanswered, false);
  assert.match(slow.reasons[0]!, /p99 latency \d+ ms > 2000 ms/);

  const both = evaluateHealth(countsOf(Array.from({ length: 20 }, () => failed({ timedOut: true, latencyMs: 30_000 }))));
  assert.equal(both.reasons.length, 2);
  assert.equal(both.unanswered, true);
  assert.equal(both.stats.timeouts, 20);
});

test('evaluateHealth against a baseline: only the errors a canary adds count; a thin baseline is no baseline', () => {
  const rate = (fails: number, of: number) => countsOf([...Array.from({ length: of - fails }, () => ok()), ...Array.from({ length: fails }, () => failed({ toolErrors: 1 }))]);
  assert.equal(evaluateHealth({ counts: rate(6, 10), baseline: rate(5, 10) }).healthy, true, '60 % beside a stable 50 %');
  const worse = evaluateHealth({ counts: rate(8, 10), baseline: rate(5, 10) });
  assert.equal(worse.healthy, false);
  assert.match(worse.reasons[0]!, /error rate 80\.0% > 20\.0% above the stable version's 50\.0% \(8\/10 failed\)/);
  assert.equal(evaluateHealth({ counts: rate(6, 10), baseline: rate(5, 9) }).healthy, false, 'a baseline under minRequests is not trusted');
  const unanswered = countsOf(Array.from({ length: 10 }, () => failed({ httpStatus: 502 })));
  assert.equal(evaluateHealth({ counts: unanswered, baseline: countsOf(Array.from({ length: 10 }, () => ok())) }).unanswered, true);
});

test('evaluateHealth with clients: a breach must hold without the client with the most failures', () => {
  const counts = countsOf([...Array.from({ length: 20 }, () => ok()), ...Array.from({ length: 30 }, () => failed({ toolErrors: 1 }))]);
  assert.equal(evaluateHealth({ counts }).healthy, false);
  assert.equal(evaluateHealth({ counts, clients: [{ requests: 30, failures: 30 }, { requests: 10, failures: 0 }, { requests: 10, failures: 0 }] }).healthy, true, 'one client with all the errors');
  assert.equal(evaluateHealth({ counts, clients: [{ requests: 15, failures: 10 }, { requests: 20, failures: 10 }, { requests: 15, failures: 10 }] }).healthy, false, 'errors everywhere');
  assert.equal(evaluateHealth({ counts, clients: [{ requests: 50, failures: 30 }] }).healthy, true, 'one client alone cannot trip it');
});

test('analyseStep: no work requests is inconclusive and never healthy; otherwise the breaker’s rules with the step’s thresholds', () => {
  const t = { minRequests: 5, minSuccessRate: 0.95, maxP99Ms: 2_000 };
  for (const minRequests of [0, 5]) {
    const none = analyseStep(emptyCounts(), undefined, { ...t, minRequests });
    assert.deepEqual([none.healthy, none.inconclusive], [false, true], `minRequests ${minRequests}`);
    assert.match(none.reasons[0]!, /0 work requests, fewer than the \d+ needed to judge/);
  }
  const good = analyseStep(countsOf(Array.from({ length: 20 }, () => ok())), undefined, t);
  assert.deepEqual([good.healthy, good.inconclusive], [true, false]);
  const bad = countsOf([...Array.from({ length: 18 }, () => ok()), ...Array.from({ length: 2 }, () => failed({ toolErrors: 1 }))]);
  assert.equal(analyseStep(bad, undefined, t).healthy, false, '90 % < 95 %');
  assert.equal(analyseStep(bad, countsOf([...Array.from({ length: 18 }, () => ok()), ...Array.from({ length: 2 }, () => failed({ toolErrors: 1 }))]), t).healthy, true, 'stable fails as often');
});

test('the client window tallies per client over the span, bounds its keys, and forgets', () => {
  const w = new ClientWindow(1_000, 10_000);
  const t0 = 2_000_000;
  w.record(t0, 'a', true);
  w.record(t0, 'a', false);
  w.record(t0 + 3_000, 'b', true);
  const byRequests = (tallies: { requests: number; failures: number }[]) => tallies.sort((x, y) => y.requests - x.requests);
  assert.deepEqual(byRequests(w.snapshot(t0 + 3_000, 10_000)), [{ requests: 2, failures: 1 }, { requests: 1, failures: 1 }]);
  assert.deepEqual(w.snapshot(t0 + 3_000, 1_000), [{ requests: 1, failures: 1 }]);
  assert.deepEqual(w.snapshot(t0 + 20_000, 10_000), []);
  for (let i = 0; i < MAX_CLIENTS_PER_SLOT + 5; i++) w.record(t0 + 30_000, `flood-${i}`, true);
  const flood = w.snapshot(t0 + 30_000, 1_000);
  assert.equal(flood.length, MAX_CLIENTS_PER_SLOT + 1, 'the rest share one tally');
  assert.equal(flood.reduce((n, c) => n + c.requests, 0), MAX_CLIENTS_PER_SLOT + 5);
  w.reset();
  assert.deepEqual(w.snapshot(t0 + 30_000, 10_000), []);
});

test('countMessageErrors: a JSON-RPC error, a tool result with isError, batches, and everything else', () => {
  assert.deepEqual(countMessageErrors({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'no' } }), { rpcErrors: 1, toolErrors: 0 });
  assert.deepEqual(countMessageErrors({ jsonrpc: '2.0', id: 1, result: { isError: true, content: [] } }), { rpcErrors: 0, toolErrors: 1 });
  assert.deepEqual(countMessageErrors({ jsonrpc: '2.0', id: 1, result: { isError: false, content: [] } }), { rpcErrors: 0, toolErrors: 0 });
  assert.deepEqual(countMessageErrors({ jsonrpc: '2.0', method: 'notifications/progress' }), { rpcErrors: 0, toolErrors: 0 });
  assert.deepEqual(
    countMessageErrors([
      { id: 1, error: { code: 1, message: 'x' } },
      { id: 2, result: { isError: true } },
      { id: 3, result: {} },
    ]),
    { rpcErrors: 1, toolErrors: 1 },
  );
  assert.deepEqual(countMessageErrors(null), { rpcErrors: 0, toolErrors: 0 });
});
