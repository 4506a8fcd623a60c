import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../core/config.ts';
import { slackPayload, genericPayload } from '../../alerts/payload.ts';
import { evaluateRules, settingsFor, type RuleEvent, type RuleInputs } from '../../alerts/rules.ts';
import { advance, planNotifications } from '../../alerts/state.ts';
import type { AlertDoc, Condition, SilenceDoc } from '../../alerts/types.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const alertsConfig = (file: Record<string, unknown> = {}) => {
  const { config } = loadConfig({ MCPSHIP_CONFIG: '' }, '/nonexistent');
  return { ...config.alerts, ...file } as typeof config.alerts;
};
const inputs = (over: Partial<RuleInputs> = {}): RuleInputs => ({ now: T0, events: [], validations: new Map(), load: [], unreachable: {}, ...over });
let seq = 0;
const ev = (kind: string, service: string, agoSec: number, extra: Partial<RuleEvent> = {}): RuleEvent => ({ seq: ++seq, kind, service, time: new Date(T0 - agoSec * 1000), ...extra });

test('per-service overrides lay over the defaults, key by key', () => {
  const a = alertsConfig({ services: { calc: { errorRate: { threshold: 0.5 } } } });
  assert.deepEqual(settingsFor(a, 'errorRate', 'calc'), { ...a.rules.errorRate, threshold: 0.5 });
  assert.equal(settingsFor(a, 'errorRate', 'calc').forSec, 300, 'the default forSec stays');
  assert.equal(settingsFor(a, 'errorRate', 'other').threshold, 0.05);
});

test('the env names webhooks, plain URLs as generic JSON and slack= as Slack', () => {
  const { config } = loadConfig({ MCPSHIP_ALERT_WEBHOOKS: 'http://127.0.0.1:9/a, slack=http://127.0.0.1:9/b' }, '/nonexistent');
  assert.deepEqual(config.alerts.webhooks, [
    { url: 'http://127.0.0.1:9/a', format: 'json' },
    { url: 'http://127.0.0.1:9/b', format: 'slack' },
  ]);
  assert.throws(() => loadConfig({ MCPSHIP_ALERT_WEBHOOKS: 'not a url' }, '/nonexistent'), /alerts\.webhooks/);
});

test('event rules hold for holdSec after the newest event, and a clearing event ends them', () => {
  const a = alertsConfig();
  const found = (events: RuleEvent[], now = T0) => evaluateRules(a, inputs({ now, events })).map((c) => `${c.rule}/${c.service}${c.version ? `@${c.version}` : ''}`);
  assert.deepEqual(found([ev('BREAKER_OPEN', 'calc', 10, { version: '2.0.0', details: { reasons: ['error rate 50%'] } })]), ['breakerOpen/calc@2.0.0']);
  assert.deepEqual(found([ev('BREAKER_OPEN', 'calc', 601, { version: '2.0.0' })]), [], 'older than holdSec (600)');
  assert.deepEqual(found([ev('BREAKER_OPEN', 'calc', 10, { version: '2.0.0' }), ev('ROLLBACK_COMPLETE', 'calc', 5, { version: '2.0.0' })]), ['rollback/calc'], 'the rollback ends the breaker alert and raises its own');
  assert.deepEqual(found([ev('REPLAY_BLOCKED', 'calc', 10, { version: '2.0.0' }), ev('REPLAY_OVERRIDDEN', 'calc', 5, { version: '2.0.0' })]), []);
  assert.deepEqual(found([ev('REPLAY_BLOCKED', 'calc', 10, { version: '2.0.0' }), ev('REPLAY_OVERRIDDEN', 'calc', 5, { version: '3.0.0' })]), ['replayBlocked/calc@2.0.0'], 'another version’s override');
  assert.deepEqual(found([ev('capture.messages_dropped', 'calc', 1, { details: { count: 7 } }), ev('capture.messages_dropped', 'calc', 0, { details: { count: 3 } })]), ['captureDropping/calc'], 'one alert, however many events');
});

test('crash loop: threshold exits of one version within the window', () => {
  const a = alertsConfig();
  const exits = (n: number, spacingSec: number) => Array.from({ length: n }, (_, i) => ev('INSTANCE_EXITED', 'calc', i * spacingSec, { version: '1.0.0' }));
  assert.deepEqual(evaluateRules(a, inputs({ events: exits(3, 10) })).map((c) => c.rule), ['crashLoop']);
  assert.deepEqual(evaluateRules(a, inputs({ events: exits(2, 10) })), []);
  assert.deepEqual(evaluateRules(a, inputs({ events: exits(3, 200) })), [], 'the third is outside 300 s');
});

test('validation failing N times in a row; one pass in between breaks the run', () => {
  const a = alertsConfig();
  const run = (...outcomes: boolean[]) => evaluateRules(a, inputs({ validations: new Map([['calc', outcomes]]) })).map((c) => c.summary);
  assert.deepEqual(run(false, false, false), ['calc: validation failed 3 times in a row']);
  assert.deepEqual(run(false, false, true, false), []);
});

test('error rate and p99 need minRequests; the stack probes become system alerts', () => {
  const a = alertsConfig();
  const load = (requests: number, errorRate: number, p99Ms: number) => [{ service: 'calc', version: '1.0.0', requests, errorRate, p99Ms }];
  assert.deepEqual(evaluateRules(a, inputs({ load: load(100, 0.2, 3000) })).map((c) => c.rule), ['errorRate', 'p99Latency']);
  assert.deepEqual(evaluateRules(a, inputs({ load: load(5, 0.9, 9000) })), []);
  assert.deepEqual(evaluateRules(a, inputs({ load: load(100, 0.01, 100) })), []);
  assert.deepEqual(evaluateRules(a, inputs({ unreachable: { mongo: 'ECONNREFUSED' } })).map((c) => `${c.rule}/${c.service}`), ['mongoUnreachable/mcpship']);
});

const cond = (over: Partial<Condition> = {}): Condition => ({ rule: 'errorRate', service: 'calc', version: '1.0.0', summary: 'bad', ...over });
const at = (sec: number) => new Date(T0 + sec * 1000);

test('pending for forSec, then firing, then resolved; one alert throughout, the next episode a new notification', () => {
  const forSec = () => 60;
  let s = advance([], [cond()], at(0), forSec);
  assert.deepEqual(s.transitions.map((t) => `${t.from}->${t.to}`), ['undefined->pending']);
  s = advance(s.alerts, [cond()], at(30), forSec);
  assert.equal(s.alerts[0]!.state, 'pending');
  assert.equal(s.transitions.length, 0);
  s = advance(s.alerts, [cond()], at(60), forSec);
  assert.deepEqual(s.transitions.map((t) => `${t.from}->${t.to}`), ['pending->firing']);
  assert.equal(s.alerts.length, 1);
  s = advance(s.alerts, [cond({ summary: 'worse' })], at(90), forSec);
  assert.equal(s.alerts[0]!.summary, 'worse');
  assert.deepEqual(s.alerts[0]!.firingSince, at(60));
  s = advance(s.alerts, [], at(120), forSec);
  assert.deepEqual(s.transitions.map((t) => `${t.from}->${t.to}`), ['firing->resolved']);
  assert.deepEqual(s.alerts[0]!.resolvedAt, at(120));
  s = advance(s.alerts, [cond()], at(130), forSec);
  assert.equal(s.alerts[0]!.episode, 2);
  assert.equal(s.alerts[0]!.state, 'pending');
});

test('a pending alert whose condition goes away is dropped without a word', () => {
  const s1 = advance([], [cond()], at(0), () => 60);
  const s2 = advance(s1.alerts, [], at(10), () => 60);
  assert.deepEqual(s2.dropped, [s1.alerts[0]!.alertId]);
  assert.deepEqual(s2.alerts, []);
  assert.deepEqual(s2.transitions, []);
});

test('notifications are grouped per service, sent once per state, and held back by a matching silence', () => {
  const now = at(0);
  const fire = (c: Condition) => advance([], [c], now, () => 0).alerts[0]!;
  const alerts: AlertDoc[] = [fire(cond()), fire(cond({ rule: 'p99Latency' })), fire(cond({ service: 'other', rule: 'crashLoop' }))];
  const plan = planNotifications(alerts, [], now);
  assert.deepEqual(plan.notifications.map((n) => `${n.notification.service}:${n.notification.alerts.length}:${n.notification.status}`).sort(), ['calc:2:firing', 'other:1:firing']);
  const told = alerts.map((a) => ({ ...a, notified: 'firing' as const }));
  assert.deepEqual(planNotifications(told, [], now).notifications, [], 'nothing new');

  const silence: SilenceDoc = { silenceId: 's1', service: 'calc', comment: 'known', createdAt: now, expiresAt: at(60) };
  const silenced = planNotifications(alerts, [silence], now);
  assert.deepEqual(silenced.notifications.map((n) => n.notification.service), ['other']);
  assert.deepEqual(silenced.silenced.map((s) => s.silenceId), ['s1', 's1']);
  assert.equal(planNotifications(alerts, [silence], at(61)).notifications.length, 2, 'expired');

  // Resolving an alert whose firing a silence kept back says nothing either.
  const resolved = advance([{ ...alerts[0]!, notified: 'firing', silencedBy: 's1' }], [], at(5), () => 0).alerts;
  assert.deepEqual(planNotifications(resolved, [], at(5)).notifications, []);
});

test('the Slack payload has text and one block per alert; the generic one is the notification', () => {
  const n = { service: 'calc', status: 'firing' as const, alerts: [{ alertId: 'errorRate/calc/1.0.0', rule: 'errorRate' as const, state: 'firing' as const, summary: 'error rate 20%', since: at(0).toISOString() }] };
  const slack = slackPayload(n) as { text: string; blocks: unknown[] };
  assert.match(slack.text, /^FIRING: calc \(1 alert\)\nFIRING errorRate: error rate 20%$/);
  assert.equal(slack.blocks.length, 2);
  assert.deepEqual(genericPayload(n), { schema: 'mcpship.alerts/v1', ...n });
});
