import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../core/config.ts';
import type { NewEvent } from '../../core/events.ts';
import { RECOVERED_EVENT_KIND, SPILL_REPEAT_MS, SPILL_STALE_MS, SPILLING_EVENT_KIND, SpillReporter, type SpillFigures } from '../../api/gateway/capture/spill-events.ts';
import { evaluateRules, type RuleEvent } from '../../alerts/rules.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const figures = (over: Partial<SpillFigures> = {}): SpillFigures => ({ spilled: 0, replayed: 0, dropped: 0, spillPending: 0, spillBytes: 0, ...over });

function sink(up = true) {
  const written: NewEvent[] = [];
  return {
    written,
    up,
    append(e: NewEvent) {
      if (!this.up) return Promise.reject(new Error('MongoDB away'));
      written.push(e);
      return Promise.resolve(e);
    },
  };
}

test('a spill is one episode: one capture.spilling however many observations, one capture.recovered once it stayed empty', async () => {
  const s = sink();
  const r = new SpillReporter(s, 'w1', 5_000);
  const why = () => 'MongoDB unavailable';
  r.observe(false, figures(), why, T0);
  for (let i = 0; i < 1_000; i++) r.observe(true, figures({ spilled: 10 + i, spillPending: 10 + i }), why, T0 + 1 + i);
  await r.report();
  assert.deepEqual(
    s.written.map((e) => e.kind),
    [SPILLING_EVENT_KIND],
  );
  r.observe(false, figures({ spilled: 1_009, replayed: 1_009 }), why, T0 + 2_000);
  r.observe(true, figures({ spilled: 1_010, replayed: 1_009, spillPending: 1 }), why, T0 + 3_000); // a flap inside the settle time: same episode
  r.observe(false, figures({ spilled: 1_010, replayed: 1_010 }), why, T0 + 4_000);
  r.observe(false, figures({ spilled: 1_010, replayed: 1_010 }), why, T0 + 8_999);
  await r.report();
  assert.equal(s.written.length, 1, 'not settled yet');
  r.observe(false, figures({ spilled: 1_010, replayed: 1_010 }), why, T0 + 9_000);
  await r.report();
  assert.deepEqual(
    s.written.map((e) => e.kind),
    [SPILLING_EVENT_KIND, RECOVERED_EVENT_KIND],
  );
  const [spilling, recovered] = s.written;
  assert.equal(spilling!.service, 'mcpship');
  assert.equal(spilling!.status, 'failed');
  assert.deepEqual({ ...spilling!.details, host: undefined, pid: undefined }, { writer: 'w1', host: undefined, pid: undefined, since: new Date(T0 + 1).toISOString(), reason: 'MongoDB unavailable', pending: 10, spillBytes: 0 });
  assert.equal(recovered!.status, 'ok');
  assert.deepEqual(
    { ...recovered!.details, host: undefined, pid: undefined },
    { writer: 'w1', host: undefined, pid: undefined, since: new Date(T0 + 1).toISOString(), until: new Date(T0 + 4_000).toISOString(), durationMs: 3_999, spilled: 1_010, replayed: 1_010, dropped: 0 },
  );
});

test('while the event store is away the events wait, in order; a long spill repeats capture.spilling, never while a report waits', async () => {
  const s = sink(false);
  const r = new SpillReporter(s, 'w1', 0);
  const why = () => 'MongoDB unavailable';
  r.observe(true, figures({ spilled: 1, spillPending: 1 }), why, T0);
  r.observe(true, figures({ spilled: 5, spillPending: 5 }), why, T0 + SPILL_REPEAT_MS);
  await r.report();
  assert.equal(s.written.length, 0);
  s.up = true;
  await r.report();
  r.observe(true, figures({ spilled: 9, spillPending: 9 }), why, T0 + SPILL_REPEAT_MS + 1);
  r.observe(true, figures({ spilled: 9, spillPending: 9 }), why, T0 + 2 * SPILL_REPEAT_MS + 1);
  r.observe(false, figures({ spilled: 9, replayed: 9, dropped: 2 }), why, T0 + 2 * SPILL_REPEAT_MS + 2);
  await r.report();
  assert.deepEqual(
    s.written.map((e) => [e.kind, e.details?.repeat ?? false]),
    [
      [SPILLING_EVENT_KIND, false],
      [SPILLING_EVENT_KIND, true],
      [RECOVERED_EVENT_KIND, false],
    ],
  );
  assert.equal(s.written[2]!.status, 'failed', 'messages were dropped during the episode');
});

test('the captureSpilling rule: from a gateway’s spilling until holdSec after its recovery; stale spills and other gateways apart', () => {
  const { config } = loadConfig({ MCPSHIP_CONFIG: '' }, '/nonexistent');
  let seq = 0;
  const ev = (kind: string, agoMs: number, writer: string, details: Record<string, unknown> = {}): RuleEvent => ({ seq: ++seq, kind, service: 'mcpship', time: new Date(T0 - agoMs), details: { writer, host: 'h', pid: 1, ...details } });
  const found = (events: RuleEvent[]) => evaluateRules(config.alerts, { now: T0, events, validations: new Map(), load: [], unreachable: {} });
  const spilling = found([ev(SPILLING_EVENT_KIND, 1_000, 'a', { since: 'T', pending: 60, reason: 'MongoDB unavailable' })]);
  assert.deepEqual(
    spilling.map((c) => [c.rule, c.service, c.summary]),
    [['captureSpilling', 'mcpship', 'capture spilling to disk on h/1 since T: 60 messages waiting (MongoDB unavailable)']],
  );
  assert.deepEqual(found([ev(SPILLING_EVENT_KIND, SPILL_STALE_MS + 1, 'a')]), [], 'a gateway with no news for SPILL_STALE_MS is gone');
  assert.equal(found([ev(SPILLING_EVENT_KIND, 3_000, 'a'), ev(RECOVERED_EVENT_KIND, 2_000, 'a', { spilled: 60, replayed: 60, dropped: 0 })]).length, 1, 'a recovery holds for holdSec (60 s)');
  assert.deepEqual(found([ev(SPILLING_EVENT_KIND, 70_000, 'a'), ev(RECOVERED_EVENT_KIND, 61_000, 'a')]), []);
  const two = found([ev(SPILLING_EVENT_KIND, 70_000, 'a'), ev(SPILLING_EVENT_KIND, 65_000, 'b'), ev(RECOVERED_EVENT_KIND, 61_000, 'a')]);
  assert.equal(two.length, 1, 'one alert per service');
  assert.match(two[0]!.summary, /^capture spilling/, 'b still spills after a recovered');
  const off = loadConfig({ MCPSHIP_CONFIG: '' }, '/nonexistent').config.alerts;
  assert.deepEqual(evaluateRules({ ...off, services: { mcpship: { captureSpilling: { enabled: false } } } }, { now: T0, events: [ev(SPILLING_EVENT_KIND, 1_000, 'a')], validations: new Map(), load: [], unreachable: {} }), []);
});
