import { Router } from 'express';
import { z } from 'zod';
import { ALERT_RULE_IDS, type AlertRuleId } from '../../core/config.ts';
import { ALERT_EVENT_KINDS, type EventStore } from '../../core/events.ts';
import type { Store } from '../../core/mongo.ts';
import { addSilence, alertCollections, expireSilence, readAlerts, type AlertCollections, type AlertsView } from '../../alerts/store.ts';
import { SILENCE_LIMITS, SYSTEM_SERVICE } from '../../alerts/types.ts';
import { HttpError } from '../errors.ts';
import { serviceParam } from '../params.ts';

const SilenceBody = z
  .object({
    service: z.string().optional(),
    rule: z.enum(ALERT_RULE_IDS).optional(),
    comment: z.string().min(1).max(SILENCE_LIMITS.maxCommentChars),
    durationSec: z.number().int().min(1).max(SILENCE_LIMITS.maxDurationSec),
  })
  .strict();

const STATES = ['pending', 'firing', 'resolved'];

/** GET /api/alerts: the alerts and silences, and the rule ids a silence may name. */
export type AlertsAnswer = AlertsView & { rules: readonly AlertRuleId[] };

/**
 * Alerts (alerts/): GET /alerts (firing first, then pending, then resolved of the last day, the
 * silences in force, and the rule ids a silence may name), POST /alerts/silences, DELETE
 * /alerts/silences/:id; a silence made or ended is an event, so pages following the stream see it.
 */
export function alertsRouter(deps: { store: Store; events: EventStore }): Router {
  const router = Router();
  let collections: Promise<AlertCollections> | undefined;
  const c = () => (collections ??= alertCollections(deps.store).catch((err: unknown) => {
    collections = undefined;
    throw err;
  }));

  router.get('/alerts', async (req, res) => {
    const service = req.query.service === undefined ? undefined : serviceParam(req.query.service);
    const state = req.query.state === undefined ? undefined : String(req.query.state);
    if (state !== undefined && !STATES.includes(state)) throw new HttpError(400, 'bad_query', `state must be one of ${STATES.join(', ')}`);
    res.json({ ...(await readAlerts(await c(), { ...(service ? { service } : {}), ...(state ? { state } : {}) })), rules: ALERT_RULE_IDS } satisfies AlertsAnswer);
  });

  router.post('/alerts/silences', async (req, res) => {
    const parsed = SilenceBody.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_silence', `invalid silence: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const body = parsed.data;
    const service = body.service === undefined ? undefined : serviceParam(body.service);
    const silence = await addSilence(await c(), { ...body, ...(service ? { service } : {}) });
    await deps.events.append({ service: service ?? SYSTEM_SERVICE, kind: ALERT_EVENT_KINDS.silenced, status: 'info', details: { ...silence } });
    res.status(201).json(silence);
  });

  router.delete('/alerts/silences/:id', async (req, res) => {
    const ended = await expireSilence(await c(), req.params.id);
    if (!ended) throw new HttpError(404, 'not_found', `no silence ${req.params.id} in force`);
    await deps.events.append({ service: ended.service ?? SYSTEM_SERVICE, kind: ALERT_EVENT_KINDS.silenceEnded, status: 'info', details: { ...ended } });
    res.status(204).end();
  });

  return router;
}
