import { proxyActivities } from '@temporalio/workflow';
import type { AlertNotifyInput } from '../alerts/types.ts';
import type { Activities } from '../activities/index.ts';

// A receiver that is down for a while still gets the news: retries back off up to a minute, for about an hour.
const { sendAlertWebhook } = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 60 },
});

/** One alert notification (a service's alerts that changed state), posted to every webhook; each retries on its own. */
export async function alertNotifyWorkflow(input: AlertNotifyInput): Promise<{ delivered: number; failed: string[] }> {
  const results = await Promise.allSettled(input.webhooks.map((w) => sendAlertWebhook(w, input.notification)));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [input.webhooks[i]!.url] : []));
  return { delivered: results.length - failed.length, failed };
}
