import type { AlertNotification, WebhookTarget } from './types.ts';

/** The generic JSON payload: the notification as is, with a version so receivers can evolve. */
export function genericPayload(n: AlertNotification): Record<string, unknown> {
  return { schema: 'mcpship.alerts/v1', ...n };
}

/** Slack's incoming-webhook shape: `text` as the fallback, one section block per alert. */
export function slackPayload(n: AlertNotification): Record<string, unknown> {
  const icon = (state: string) => (state === 'firing' ? ':red_circle:' : ':large_green_circle:');
  const title = `${n.status === 'firing' ? 'FIRING' : 'RESOLVED'}: ${n.service} (${n.alerts.length} alert${n.alerts.length === 1 ? '' : 's'})`;
  return {
    text: `${title}\n${n.alerts.map((a) => `${a.state.toUpperCase()} ${a.rule}: ${a.summary}`).join('\n')}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      ...n.alerts.map((a) => ({ type: 'section', text: { type: 'mrkdwn', text: `${icon(a.state)} *${a.rule}* ${a.summary}`.slice(0, 3000) } })),
      ...(n.dashboardUrl ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `<${n.dashboardUrl}|mcpship dashboard>` }] }] : []),
    ],
  };
}

export function payloadFor(target: WebhookTarget, n: AlertNotification): Record<string, unknown> {
  return target.format === 'slack' ? slackPayload(n) : genericPayload(n);
}
