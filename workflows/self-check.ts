import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';

const { recordSelfCheck } = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds' });

/** Proves the whole chain: Temporal schedules, a worker runs an activity, the activity reaches MongoDB. */
export async function selfCheckWorkflow(token: string): Promise<{ token: string; roundTrip: boolean }> {
  const roundTrip = await recordSelfCheck(token);
  return { token, roundTrip };
}
