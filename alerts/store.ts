import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import type { AlertRuleId } from '../core/config.ts';
import type { Store } from '../core/mongo.ts';
import { silenceFor } from './state.ts';
import type { AlertDoc, AlertView, SilenceDoc } from './types.ts';

/** Resolved alerts are kept this long for GET /api/alerts, then forgotten. */
export const RESOLVED_KEEP_MS = 24 * 60 * 60_000;

export interface AlertCollections {
  alerts: Collection<AlertDoc>;
  silences: Collection<SilenceDoc>;
  /** The evaluator's lease: one evaluator at a time, whichever worker holds it. */
  leases: Collection<{ _id: string; owner: string; until: Date }>;
}

export async function alertCollections(store: Pick<Store, 'db'>): Promise<AlertCollections> {
  const c: AlertCollections = {
    alerts: store.db.collection<AlertDoc>('alerts'),
    silences: store.db.collection<SilenceDoc>('alertSilences'),
    leases: store.db.collection('alertLeases'),
  };
  await c.alerts.createIndex({ alertId: 1 }, { unique: true });
  await c.silences.createIndex({ silenceId: 1 }, { unique: true });
  return c;
}

export interface AlertsView {
  alerts: AlertView[];
  silences: SilenceDoc[];
}

/** What GET /api/alerts shows: alerts (firing first) and the silences not yet expired. */
export async function readAlerts(c: AlertCollections, query: { service?: string; state?: string }, now = new Date()): Promise<AlertsView> {
  const alerts = await c.alerts.find({ ...(query.service ? { service: query.service } : {}), ...(query.state ? { state: query.state as AlertDoc['state'] } : {}) }, { projection: { _id: 0 } }).toArray();
  const order = { firing: 0, pending: 1, resolved: 2 } as const;
  alerts.sort((a, b) => order[a.state] - order[b.state] || b.updatedAt.getTime() - a.updatedAt.getTime());
  const silences = await c.silences.find({ expiresAt: { $gt: now } }, { projection: { _id: 0 } }).sort({ expiresAt: 1 }).toArray();
  const silenceOf = (a: AlertDoc) => (a.state === 'resolved' ? undefined : silenceFor(a, silences, now)?.silenceId);
  return {
    alerts: alerts.map((a) => {
      const silence = silenceOf(a);
      return silence ? { ...a, silence } : a;
    }),
    silences,
  };
}

export async function addSilence(c: AlertCollections, input: { service?: string; rule?: AlertRuleId; comment: string; durationSec: number }, now = new Date()): Promise<SilenceDoc> {
  const doc: SilenceDoc = {
    silenceId: randomUUID(),
    ...(input.service ? { service: input.service } : {}),
    ...(input.rule ? { rule: input.rule } : {}),
    comment: input.comment,
    createdAt: now,
    expiresAt: new Date(now.getTime() + input.durationSec * 1000),
  };
  await c.silences.insertOne({ ...doc });
  return doc;
}

/** Ends a silence now (it stays listed nowhere: expired ones are not shown); null when none with that id is in force. */
export async function expireSilence(c: AlertCollections, silenceId: string, now = new Date()): Promise<SilenceDoc | null> {
  // FerretDB takes no projection on findAndModify, so _id is dropped here.
  const ended = await c.silences.findOneAndUpdate({ silenceId, expiresAt: { $gt: now } }, { $set: { expiresAt: now } }, { returnDocument: 'after' });
  if (!ended) return null;
  const { _id, ...doc } = ended;
  return doc;
}
