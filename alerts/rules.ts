/**
 * The alert rules as pure functions: facts read from MongoDB (events, health buckets) and the
 * stack's reachability in, the conditions that hold now out. Whether a condition has held long
 * enough to fire is alerts/state.ts's business.
 */
import type { AlertRuleId, AlertRuleSettings, Config } from '../core/config.ts';
import type { EventDoc } from '../core/documents.ts';
import { RECOVERED_EVENT_KIND, SPILL_STALE_MS, SPILLING_EVENT_KIND } from '../api/gateway/capture/spill-events.ts';
import { SYSTEM_SERVICE, type Condition } from './types.ts';

export type AlertsConfig = Config['alerts'];

/** A rule's defaults with the service's overrides laid over them. */
export function settingsFor(alerts: AlertsConfig, rule: AlertRuleId, service: string): AlertRuleSettings {
  return { ...alerts.rules[rule], ...alerts.services[service]?.[rule] };
}

/**
 * Rules raised by an event and held for holdSec after the newest one, unless a later event of a
 * `clear` kind (same service, and same version when both name one) says the matter is over.
 */
export const EVENT_RULES = {
  breakerOpen: { fire: ['BREAKER_OPEN'], clear: ['PROMOTED', 'ROLLBACK_COMPLETE', 'DEPLOYMENT_ABORTED'], perVersion: true },
  rollback: { fire: ['ROLLBACK_COMPLETE'], clear: ['PROMOTED'], perVersion: false },
  // The compatibility layer's gate: the deployment stops BLOCKED until an override or an abort.
  replayBlocked: { fire: ['REPLAY_BLOCKED'], clear: ['REPLAY_OVERRIDDEN', 'DEPLOYMENT_ABORTED', 'DEPLOYMENT_FAILED', 'PROMOTED'], perVersion: true },
  captureDropping: { fire: ['capture.messages_dropped'], clear: [], perVersion: false },
} as const satisfies Partial<Record<AlertRuleId, { fire: readonly string[]; clear: readonly string[]; perVersion: boolean }>>;

export const CRASH_KINDS = ['INSTANCE_EXITED', 'INSTANCE_FAILED'] as const;
/** The outcomes of a validation, newest first per service, for validationFailing. */
export const VALIDATION_OK_KINDS = ['STAGED', 'ALREADY_STAGED'] as const;
export const VALIDATION_FAILED_KIND = 'VALIDATION_FAILED';

/** Every event kind the rules read in a window (validation outcomes are read apart: they have none). */
export const WATCHED_KINDS: string[] = [...new Set([...Object.values(EVENT_RULES).flatMap((r) => [...r.fire, ...r.clear]), ...CRASH_KINDS, SPILLING_EVENT_KIND, RECOVERED_EVENT_KIND])];

/** How far back the window reaches: the longest holdSec of any rule for any service. */
export function windowSec(alerts: AlertsConfig): number {
  const holds = [...Object.values(alerts.rules), ...Object.values(alerts.services).flatMap((s) => Object.values(s))].map((r) => r?.holdSec ?? 0);
  return Math.max(60, SPILL_STALE_MS / 1000, ...holds);
}

export type RuleEvent = Pick<EventDoc, 'seq' | 'time' | 'service' | 'kind'> & Partial<Pick<EventDoc, 'version' | 'details'>>;

export interface VersionLoad {
  service: string;
  version: string;
  requests: number;
  errorRate: number | null;
  p99Ms: number | null;
}

export interface RuleInputs {
  now: number;
  /** Events of WATCHED_KINDS within windowSec, in seq order. */
  events: readonly RuleEvent[];
  /** Per service, the outcome (true: passed) of its latest validations, newest first. */
  validations: ReadonlyMap<string, readonly boolean[]>;
  /** Each routed version's health over the last minute. */
  load: readonly VersionLoad[];
  /** Why Temporal / MongoDB could not be reached just now; undefined when they answered. */
  unreachable: { temporal?: string; mongo?: string };
}

const reasonOf = (e: RuleEvent) => {
  const d = e.details ?? {};
  const r = d.reason ?? (Array.isArray(d.reasons) ? d.reasons.join('; ') : undefined);
  return typeof r === 'string' ? `: ${r.split('\n')[0]}` : '';
};

function eventConditions(alerts: AlertsConfig, rule: keyof typeof EVENT_RULES, inputs: RuleInputs): Condition[] {
  const def = EVENT_RULES[rule];
  const newest = new Map<string, RuleEvent>();
  for (const e of inputs.events) {
    const fires = (def.fire as readonly string[]).includes(e.kind);
    if (fires) newest.set(`${e.service}\u0000${def.perVersion ? (e.version ?? '') : ''}`, e);
    else if ((def.clear as readonly string[]).includes(e.kind)) {
      for (const [key, fired] of newest) {
        if (fired.service === e.service && (!def.perVersion || !e.version || !fired.version || fired.version === e.version)) newest.delete(key);
      }
    }
  }
  const out: Condition[] = [];
  for (const e of newest.values()) {
    const s = settingsFor(alerts, rule, e.service);
    if (!s.enabled || inputs.now - e.time.getTime() > s.holdSec * 1000) continue;
    const count = e.details && typeof e.details.count === 'number' ? ` (${e.details.count})` : '';
    out.push({
      rule,
      service: e.service,
      ...(def.perVersion && e.version ? { version: e.version } : {}),
      summary: `${e.kind}${e.version ? ` ${e.service}@${e.version}` : ` ${e.service}`}${count}${reasonOf(e)}`,
      details: { kind: e.kind, seq: e.seq, at: e.time.toISOString() },
    });
  }
  return out;
}

function crashLoops(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  const exits = new Map<string, RuleEvent[]>();
  for (const e of inputs.events) {
    if (!(CRASH_KINDS as readonly string[]).includes(e.kind)) continue;
    const key = `${e.service}\u0000${e.version ?? ''}`;
    exits.set(key, [...(exits.get(key) ?? []), e]);
  }
  const out: Condition[] = [];
  for (const list of exits.values()) {
    const { service, version } = list[0]!;
    const s = settingsFor(alerts, 'crashLoop', service);
    const recent = list.filter((e) => inputs.now - e.time.getTime() <= s.holdSec * 1000);
    if (!s.enabled || recent.length < Math.max(1, s.threshold)) continue;
    out.push({
      rule: 'crashLoop',
      service,
      ...(version ? { version } : {}),
      summary: `${service}${version ? `@${version}` : ''}: ${recent.length} instance exits in ${s.holdSec} s${reasonOf(recent[recent.length - 1]!)}`,
      details: { exits: recent.length, windowSec: s.holdSec },
    });
  }
  return out;
}

function validationFailing(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  const out: Condition[] = [];
  for (const [service, outcomes] of inputs.validations) {
    const s = settingsFor(alerts, 'validationFailing', service);
    const inARow = outcomes.findIndex((ok) => ok);
    const failures = inARow === -1 ? outcomes.length : inARow;
    if (s.enabled && failures >= Math.max(1, s.threshold)) {
      out.push({ rule: 'validationFailing', service, summary: `${service}: validation failed ${failures} times in a row`, details: { failures } });
    }
  }
  return out;
}

function loadConditions(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  const out: Condition[] = [];
  for (const v of inputs.load) {
    const rate = settingsFor(alerts, 'errorRate', v.service);
    if (rate.enabled && v.requests >= rate.minRequests && v.errorRate !== null && v.errorRate > rate.threshold) {
      out.push({ rule: 'errorRate', service: v.service, version: v.version, summary: `${v.service}@${v.version}: error rate ${(v.errorRate * 100).toFixed(1)}% over ${(rate.threshold * 100).toFixed(1)}% (${v.requests} requests in the last minute)`, details: { errorRate: v.errorRate, requests: v.requests, threshold: rate.threshold } });
    }
    const p99 = settingsFor(alerts, 'p99Latency', v.service);
    if (p99.enabled && v.requests >= p99.minRequests && v.p99Ms !== null && v.p99Ms > p99.threshold) {
      out.push({ rule: 'p99Latency', service: v.service, version: v.version, summary: `${v.service}@${v.version}: p99 ${Math.round(v.p99Ms)} ms over ${p99.threshold} ms`, details: { p99Ms: v.p99Ms, requests: v.requests, threshold: p99.threshold } });
    }
  }
  return out;
}

/**
 * A gateway's capture spills from its `capture.spilling` until holdSec after its
 * `capture.recovered`: held that long so that a spill which began and ended between two passes
 * (MongoDB away and back: both events are written on its return) is still seen and told. A
 * spilling gateway repeats the event; one with no news for SPILL_STALE_MS is gone (the next
 * gateway replays its spill) and no longer holds the alert.
 */
function captureSpilling(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  const newest = new Map<string, RuleEvent>();
  for (const e of inputs.events) {
    if (e.kind === SPILLING_EVENT_KIND || e.kind === RECOVERED_EVENT_KIND) newest.set(`${e.service}\u0000${String(e.details?.writer ?? '')}`, e);
  }
  const perService = new Map<string, string[]>();
  for (const e of newest.values()) {
    const s = settingsFor(alerts, 'captureSpilling', e.service);
    const age = inputs.now - e.time.getTime();
    const spilling = e.kind === SPILLING_EVENT_KIND;
    if (!s.enabled || age > (spilling ? SPILL_STALE_MS : s.holdSec * 1000)) continue;
    const d = e.details ?? {};
    const where = `${String(d.host ?? '?')}/${String(d.pid ?? '?')}`;
    const line = spilling
      ? `capture spilling to disk on ${where} since ${String(d.since)}: ${String(d.pending)} messages waiting (${String(d.reason)})`
      : `capture spilled on ${where} from ${String(d.since)} to ${String(d.until)}: ${String(d.spilled)} messages, ${String(d.replayed)} replayed, ${String(d.dropped)} dropped`;
    perService.set(e.service, [...(perService.get(e.service) ?? []), line]);
  }
  return [...perService].map(([service, lines]) => ({ rule: 'captureSpilling', service, summary: lines.join('; '), details: { gateways: lines.length } }));
}

function stackConditions(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  const out: Condition[] = [];
  const parts = [
    ['temporalUnreachable', 'Temporal', inputs.unreachable.temporal],
    ['mongoUnreachable', 'MongoDB', inputs.unreachable.mongo],
  ] as const;
  for (const [rule, name, error] of parts) {
    if (error !== undefined && settingsFor(alerts, rule, SYSTEM_SERVICE).enabled) out.push({ rule, service: SYSTEM_SERVICE, summary: `${name} unreachable: ${error}` });
  }
  return out;
}

/** Every condition that holds now. */
export function evaluateRules(alerts: AlertsConfig, inputs: RuleInputs): Condition[] {
  return [
    ...(Object.keys(EVENT_RULES) as (keyof typeof EVENT_RULES)[]).flatMap((rule) => eventConditions(alerts, rule, inputs)),
    ...captureSpilling(alerts, inputs),
    ...crashLoops(alerts, inputs),
    ...validationFailing(alerts, inputs),
    ...loadConditions(alerts, inputs),
    ...stackConditions(alerts, inputs),
  ];
}
