import { ActivityFailure, CancellationScope, isCancellation, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { ReplayInput, ReplayReport } from '../compat/replay-types.ts';
import { McpService, McpVersion } from '../core/search-attributes.ts';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['NotFound', 'BadReplay'] },
});
/**
 * The replay itself: long, so judged alive by its heartbeats. A worker lost mid-run shows as a
 * missed heartbeat; the next attempt resumes from the position in the last one.
 */
const runner = proxyActivities<Activities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['NotFound', 'BadReplay'] },
});

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Differential replay of captured traffic (id `replay/<service>/<candidate>`): the stable
 * version's captured requests sent again to an instance of the candidate and to a second instance
 * of the stable version, both started for the replay alone; the differences that stable also shows
 * against its own capture are noise. Ends with the report (also in MongoDB), whatever the outcome:
 * cancelled and failed runs store what they did.
 */
export async function replayWorkflow(input: ReplayInput): Promise<ReplayReport> {
  upsertSearchAttributes([
    { key: McpService, value: input.service },
    { key: McpVersion, value: input.candidate },
  ]);
  const { workflowId, runId, parent } = workflowInfo();
  // Not cancellable: the report it opens must exist for the cancellation below to close it.
  const params = await CancellationScope.nonCancellable(() => acts.prepareReplay(input, { replayId: runId, workflowId, ...(parent ? { parent: { workflowId: parent.workflowId, runId: parent.runId } } : {}) }));
  try {
    await runner.runReplay(params);
  } catch (err) {
    // A gate's replay is cancelled also when its deployment is terminated (parentClosePolicy
    // REQUEST_CANCEL): this is the only code that runs then, so the report's end is written here.
    const cancelled = isCancellation(err);
    await CancellationScope.nonCancellable(() => (cancelled ? acts.finishReplay(params, 'CANCELLED') : acts.finishReplay(params, 'FAILED', failureMessage(err))));
    throw err;
  }
  // A cancellation that comes once every request is replayed does not undo the run.
  return CancellationScope.nonCancellable(() => acts.finishReplay(params, 'DONE'));
}
