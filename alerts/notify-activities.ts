import { ApplicationFailure } from '@temporalio/common';
import { payloadFor } from './payload.ts';
import type { AlertNotification, WebhookTarget } from './types.ts';

const TIMEOUT_MS = 10_000;

/** The webhook activity: one POST; a failure is retried by Temporal, except a refusal no retry changes. */
export function alertActivities() {
  return {
    async sendAlertWebhook(target: WebhookTarget, notification: AlertNotification): Promise<{ status: number }> {
      let res: Response;
      try {
        res = await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'mcpship-alerts' },
          body: JSON.stringify(payloadFor(target, notification)),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (err) {
        throw new Error(`webhook ${target.url} unreachable: ${(err as Error).cause ?? (err as Error).message}`);
      }
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return { status: res.status };
      const message = `webhook ${target.url} answered HTTP ${res.status}`;
      // 4xx (but 408 and 429) means the request itself is wrong: retrying sends the same again.
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw ApplicationFailure.nonRetryable(message, 'WebhookRefused');
      throw new Error(message);
    },
  };
}
