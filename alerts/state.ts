/**
 * Alert states, as a pure function of the previous alerts and this evaluation's conditions:
 * pending while a condition holds for less than its rule's forSec, firing after, resolved when it
 * stops holding. One alert per rule, service and version, however many evaluations see it.
 */
import type { AlertRuleId } from '../core/config.ts';
import type { AlertDoc, AlertNotification, AlertState, Condition, SilenceDoc } from './types.ts';

export const alertIdOf = (c: { rule: string; service: string; version?: string }) => [c.rule, c.service, ...(c.version ? [c.version] : [])].join('/');

export interface Transition {
  alert: AlertDoc;
  from: AlertState | undefined;
  to: AlertState;
}

export interface Advanced {
  /** Every alert to keep, changed or not. */
  alerts: AlertDoc[];
  /** Pending alerts whose condition went away before firing: nobody was told, nothing to resolve. */
  dropped: string[];
  transitions: Transition[];
}

export function advance(previous: readonly AlertDoc[], conditions: readonly Condition[], now: Date, forSecOf: (rule: AlertRuleId, service: string) => number): Advanced {
  const byId = new Map(previous.map((a) => [a.alertId, a]));
  const holding = new Map(conditions.map((c) => [alertIdOf(c), c]));
  const alerts: AlertDoc[] = [];
  const dropped: string[] = [];
  const transitions: Transition[] = [];
  const move = (alert: AlertDoc, from: AlertState | undefined) => {
    if (alert.state !== from) transitions.push({ alert, from, to: alert.state });
    alerts.push(alert);
  };
  for (const [alertId, c] of holding) {
    const prev = byId.get(alertId);
    const fresh = !prev || prev.state === 'resolved';
    const activeSince = fresh ? now : prev.activeSince;
    const fires = now.getTime() - activeSince.getTime() >= forSecOf(c.rule, c.service) * 1000;
    const state: AlertState = prev?.state === 'firing' || fires ? 'firing' : 'pending';
    const alert: AlertDoc = {
      alertId,
      rule: c.rule,
      service: c.service,
      ...(c.version ? { version: c.version } : {}),
      state,
      summary: c.summary,
      ...(c.details ? { details: c.details } : {}),
      episode: fresh ? (prev?.episode ?? 0) + 1 : prev.episode,
      activeSince,
      ...(state === 'firing' ? { firingSince: fresh || prev.state === 'pending' ? now : (prev.firingSince ?? now) } : {}),
      ...(!fresh && prev.notified ? { notified: prev.notified } : {}),
      ...(!fresh && prev.silencedBy ? { silencedBy: prev.silencedBy } : {}),
      updatedAt: now,
    };
    if (fresh) delete alert.notified;
    move(alert, fresh ? undefined : prev.state);
  }
  for (const prev of previous) {
    if (holding.has(prev.alertId)) continue;
    if (prev.state === 'pending') dropped.push(prev.alertId);
    else if (prev.state === 'firing') move({ ...prev, state: 'resolved', resolvedAt: now, updatedAt: now }, 'firing');
    else alerts.push(prev);
  }
  return { alerts, dropped, transitions };
}

export function silenceFor(alert: Pick<AlertDoc, 'service' | 'rule'>, silences: readonly SilenceDoc[], now: Date): SilenceDoc | undefined {
  return silences.find((s) => s.expiresAt.getTime() > now.getTime() && (!s.service || s.service === alert.service) && (!s.rule || s.rule === alert.rule));
}

export interface NotificationPlan {
  /** One per service with alerts to tell about. */
  notifications: { notification: AlertNotification; alerts: AlertDoc[] }[];
  /** Alerts whose news a silence keeps back: marked told, never sent. */
  silenced: { alert: AlertDoc; silenceId: string }[];
}

/**
 * What is still to be told: firing or resolved alerts whose last notification was for another
 * state (a resolve of an alert that was never told about firing — silenced then — is not sent
 * either), grouped per service.
 */
export function planNotifications(alerts: readonly AlertDoc[], silences: readonly SilenceDoc[], now: Date, dashboardUrl?: string): NotificationPlan {
  const plan: NotificationPlan = { notifications: [], silenced: [] };
  const byService = new Map<string, AlertDoc[]>();
  for (const alert of alerts) {
    if (alert.state === 'pending' || alert.notified === alert.state) continue;
    const silence = silenceFor(alert, silences, now);
    const firingUntold = alert.state === 'resolved' && (alert.notified !== 'firing' || alert.silencedBy !== undefined);
    if (silence || firingUntold) {
      plan.silenced.push({ alert, silenceId: silence?.silenceId ?? alert.silencedBy ?? '' });
      continue;
    }
    byService.set(alert.service, [...(byService.get(alert.service) ?? []), alert]);
  }
  for (const [service, list] of byService) {
    const state = (a: AlertDoc) => a.state as 'firing' | 'resolved';
    plan.notifications.push({
      alerts: list,
      notification: {
        service,
        status: list.some((a) => a.state === 'firing') ? 'firing' : 'resolved',
        alerts: list.map((a) => ({
          alertId: a.alertId,
          rule: a.rule,
          ...(a.version ? { version: a.version } : {}),
          state: state(a),
          summary: a.summary,
          since: (a.firingSince ?? a.activeSince).toISOString(),
          ...(a.resolvedAt ? { resolvedAt: a.resolvedAt.toISOString() } : {}),
          ...(a.details ? { details: a.details } : {}),
        })),
        ...(dashboardUrl ? { dashboardUrl } : {}),
      },
    });
  }
  return plan;
}
