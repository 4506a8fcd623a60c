import type { SilenceDoc } from '../alerts/types.ts';
import type { AlertsAnswer } from '../api/routes/alerts.ts';
import type { ApiClient } from './api-client.ts';
import { clock } from './progress.ts';

/** `mcpship alerts`: firing, pending and recently resolved alerts, and the silences in force. */
export async function alertsCommand(api: ApiClient, opts: { service?: string; json?: boolean }): Promise<void> {
  const view = await api.get<AlertsAnswer>(`/api/alerts${opts.service ? `?service=${encodeURIComponent(opts.service)}` : ''}`);
  if (opts.json) return console.log(JSON.stringify(view));
  if (view.alerts.length === 0) console.log('no alerts');
  for (const a of view.alerts) {
    const since = a.state === 'resolved' ? `resolved ${clock(a.resolvedAt ?? a.updatedAt)}` : `since ${clock(a.firingSince ?? a.activeSince)}`;
    console.log(`${a.state.toUpperCase().padEnd(9)} ${a.alertId.padEnd(40)} ${since}${(a.silence ?? a.silencedBy) ? ' (silenced)' : ''}  ${a.summary}`);
  }
  for (const s of view.silences) console.log(`silence ${s.silenceId}  ${s.service ?? 'all services'} / ${s.rule ?? 'all rules'} until ${new Date(s.expiresAt).toISOString()}  ${s.comment}`);
}

/** `mcpship silence`: no notifications for matching alerts for a while. */
export async function silenceCommand(api: ApiClient, comment: string, opts: { service?: string; rule?: string; for: string; json?: boolean }): Promise<void> {
  const minutes = Number(opts.for);
  const silence = await api.request<SilenceDoc>('POST', '/api/alerts/silences', {
    comment,
    durationSec: Math.round(minutes * 60),
    ...(opts.service ? { service: opts.service } : {}),
    ...(opts.rule ? { rule: opts.rule } : {}),
  });
  console.log(opts.json ? JSON.stringify(silence) : `silence ${silence.silenceId}: ${silence.service ?? 'all services'} / ${silence.rule ?? 'all rules'} until ${new Date(silence.expiresAt).toISOString()}`);
}
