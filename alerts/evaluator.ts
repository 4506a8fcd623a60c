/**
 * The alert evaluator: a loop in the worker process. Each pass reads the facts (events, health
 * buckets) from MongoDB, probes Temporal and MongoDB, advances the alerts kept in MongoDB, appends
 * their transitions to the event stream and starts a notification workflow per service with news.
 * A lease in MongoDB keeps one evaluator at a time among several workers; the state is MongoDB's,
 * so any worker takes over where another stopped.
 */
import { createHash, randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Config } from '../core/config.ts';
import type { EventStore } from '../core/events.ts';
import { ALERT_EVENT_KINDS } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import { isDuplicateKey } from '../core/insert-absent.ts';
import type { Store } from '../core/mongo.ts';
import { readServiceHealth } from '../api/gateway/metrics.ts';
import { evaluateRules, settingsFor, VALIDATION_FAILED_KIND, VALIDATION_OK_KINDS, WATCHED_KINDS, windowSec, type RuleInputs, type VersionLoad } from './rules.ts';
import { advance, planNotifications, type Transition } from './state.ts';
import { alertCollections, RESOLVED_KEEP_MS, type AlertCollections } from './store.ts';
import type { AlertDoc, Condition } from './types.ts';

const PROBE_MS = 3_000;
const LEASE_ID = 'evaluator';

export interface AlertEvaluatorDeps {
  config: Config;
  store: Store;
  events: EventStore;
  temporal: Client;
  log: Logger;
  /** For links in notifications. */
  dashboardUrl?: string;
}

async function probe(what: () => Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([what(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${PROBE_MS} ms`)), PROBE_MS)))]);
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0] || 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

const workflowIdFor = (service: string, alerts: readonly AlertDoc[]) =>
  `alerts/notify/${service}/${createHash('sha256').update(alerts.map((a) => `${a.alertId}#${a.episode}:${a.state}`).sort().join('\n')).digest('hex').slice(0, 16)}`;

export class AlertEvaluator {
  private readonly owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private collections: AlertCollections | undefined;
  /** The alerts as last read or written: what a pass works from while MongoDB is away. */
  private cache: AlertDoc[] | undefined;
  private unsaved = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly deps: AlertEvaluatorDeps) {}

  start(): void {
    const every = this.deps.config.alerts.intervalSec * 1000;
    const loop = () => {
      this.running = this.tick()
        .catch((err: unknown) => this.deps.log.warn({ err }, 'alert evaluation failed'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, every);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    // Let another worker take over at once.
    await this.collections?.leases.deleteOne({ _id: LEASE_ID, owner: this.owner }).catch(() => undefined);
  }

  /** One pass; exported for tests that drive time themselves. */
  async tick(now = new Date()): Promise<void> {
    const { store, temporal } = this.deps;
    const unreachable: RuleInputs['unreachable'] = {};
    const [mongo, temporalError] = await Promise.all([probe(() => store.db.command({ ping: 1 })), probe(() => temporal.workflowService.getSystemInfo({}))]);
    if (mongo) unreachable.mongo = mongo;
    if (temporalError) unreachable.temporal = temporalError;

    let previous: AlertDoc[];
    let conditions: Condition[];
    if (mongo) {
      // Only the evaluator that held the lease carries on, from its copy, until MongoDB is back.
      if (!this.cache) return;
      previous = this.cache;
      conditions = [...previous.filter((a) => a.state !== 'resolved' && a.rule !== 'mongoUnreachable').map(conditionOf), ...evaluateRules(this.deps.config.alerts, { now: now.getTime(), events: [], validations: new Map(), load: [], unreachable })];
    } else {
      this.collections ??= await alertCollections(store);
      if (!(await this.lease(now))) {
        this.cache = undefined;
        return;
      }
      previous = this.unsaved && this.cache ? this.cache : await this.collections.alerts.find({}, { projection: { _id: 0 } }).toArray();
      conditions = evaluateRules(this.deps.config.alerts, await this.inputs(now, unreachable));
    }

    const alerts = this.deps.config.alerts;
    const advanced = advance(previous, conditions, now, (rule, service) => settingsFor(alerts, rule, service).forSec);
    const kept = advanced.alerts.filter((a) => a.state !== 'resolved' || now.getTime() - (a.resolvedAt ?? a.updatedAt).getTime() < RESOLVED_KEEP_MS);
    this.cache = kept;
    this.unsaved = true;
    await this.save(kept, previous);
    await this.record(advanced.transitions);
    await this.notify(now);
  }

  private async lease(now: Date): Promise<boolean> {
    const until = new Date(now.getTime() + this.deps.config.alerts.intervalSec * 3000);
    try {
      await this.collections!.leases.updateOne({ _id: LEASE_ID, $or: [{ owner: this.owner }, { until: { $lt: now } }] }, { $set: { owner: this.owner, until } }, { upsert: true });
      return true;
    } catch (err) {
      // Another live evaluator holds it: the upsert met its document's _id.
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  private async inputs(now: Date, unreachable: RuleInputs['unreachable']): Promise<RuleInputs> {
    const { store, config } = this.deps;
    const since = new Date(now.getTime() - windowSec(config.alerts) * 1000);
    const events = await store.events
      .find({ kind: { $in: WATCHED_KINDS }, time: { $gte: since } }, { projection: { _id: 0, seq: 1, time: 1, service: 1, version: 1, kind: 1, details: 1 } })
      .sort({ seq: 1 })
      .limit(10_000)
      .toArray();
    const services = await store.services.find({ state: 'PRESENT' }, { projection: { _id: 0, name: 1 } }).toArray();
    const validations = new Map<string, boolean[]>();
    const load: VersionLoad[] = [];
    for (const { name } of services) {
      const depth = Math.max(1, settingsFor(config.alerts, 'validationFailing', name).threshold);
      const outcomes = await store.events
        .find({ service: name, kind: { $in: [VALIDATION_FAILED_KIND, ...VALIDATION_OK_KINDS] } }, { projection: { _id: 0, kind: 1 } })
        .sort({ seq: -1 })
        .limit(depth)
        .toArray();
      validations.set(name, outcomes.map((e) => e.kind !== VALIDATION_FAILED_KIND));
      const health = await readServiceHealth(store, name, now.getTime());
      for (const [version, h] of Object.entries(health.versions)) load.push({ service: name, version, requests: h.last60s.requests, errorRate: h.last60s.errorRate, p99Ms: h.last60s.p99Ms });
    }
    return { now: now.getTime(), events, validations, load, unreachable };
  }

  private async save(alerts: AlertDoc[], previous: readonly AlertDoc[]): Promise<void> {
    const c = this.collections;
    if (!c) return;
    try {
      const keep = new Set(alerts.map((a) => a.alertId));
      const gone = previous.filter((a) => !keep.has(a.alertId)).map((a) => a.alertId);
      if (alerts.length) await c.alerts.bulkWrite(alerts.map((a) => ({ replaceOne: { filter: { alertId: a.alertId }, replacement: a, upsert: true } })), { ordered: false });
      if (gone.length) await c.alerts.deleteMany({ alertId: { $in: gone } });
      this.unsaved = false;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'alerts not saved; kept for the next pass');
    }
  }

  private async record(transitions: readonly Transition[]): Promise<void> {
    for (const t of transitions) {
      const a = t.alert;
      await this.deps.events
        .append({ service: a.service, ...(a.version ? { version: a.version } : {}), kind: ALERT_EVENT_KINDS[t.to], status: t.to === 'resolved' ? 'ok' : t.to === 'firing' ? 'failed' : 'info', details: { alertId: a.alertId, rule: a.rule, summary: a.summary, episode: a.episode, from: t.from ?? null } })
        .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message, alertId: a.alertId }, 'alert event not recorded'));
    }
  }

  /** Starts one notification workflow per service with news; what cannot start now is tried on the next pass. */
  private async notify(now: Date): Promise<void> {
    const { config, temporal, log } = this.deps;
    const c = this.collections;
    const silences = c ? await c.silences.find({ expiresAt: { $gt: now } }).toArray().catch(() => []) : [];
    const plan = planNotifications(this.cache ?? [], silences, now, this.deps.dashboardUrl);
    const told = new Map<string, { notified: AlertDoc['notified']; silencedBy?: string }>();
    for (const { alert, silenceId } of plan.silenced) told.set(alert.alertId, { notified: alert.state as 'firing' | 'resolved', silencedBy: silenceId });
    for (const { notification, alerts } of plan.notifications) {
      if (config.alerts.webhooks.length > 0) {
        try {
          await temporal.workflow.start('alertNotifyWorkflow', {
            workflowId: workflowIdFor(notification.service, alerts),
            taskQueue: config.temporal.taskQueue,
            args: [{ webhooks: config.alerts.webhooks, notification }],
            // The same news is sent once, even if a pass that started it is repeated.
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
            log.warn({ err: (err as Error).message, service: notification.service }, 'alert notification not started; retried on the next pass');
            continue;
          }
        }
      }
      for (const a of alerts) told.set(a.alertId, { notified: a.state as 'firing' | 'resolved' });
    }
    if (told.size === 0) return;
    this.cache = (this.cache ?? []).map((a) => {
      const t = told.get(a.alertId);
      if (!t) return a;
      const next: AlertDoc = { ...a, notified: t.notified };
      if (t.silencedBy !== undefined) next.silencedBy = t.silencedBy;
      else delete next.silencedBy;
      return next;
    });
    this.unsaved = true;
    await this.save(this.cache, this.cache);
  }
}

/** The condition an alert stands for, to carry it through a pass that cannot read the facts. */
function conditionOf(a: AlertDoc): Condition {
  return { rule: a.rule, service: a.service, ...(a.version ? { version: a.version } : {}), summary: a.summary, ...(a.details ? { details: a.details } : {}) };
}

export function startAlertEvaluator(deps: AlertEvaluatorDeps): AlertEvaluator {
  const evaluator = new AlertEvaluator(deps);
  evaluator.start();
  return evaluator;
}
