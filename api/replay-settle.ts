/**
 * A replay report still RUNNING whose workflow has closed never got its end written: the replay
 * workflow was terminated (which runs none of its code) or its history is gone. Reports are settled
 * from Temporal's status when read, so the API, `mcpship replay` and the dashboard never show a
 * dead run as running, and the end is told in the event stream as the replay tells its own. (A
 * gate's replay whose deployment is terminated ends its report itself: workflows/replay-workflow.ts.)
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { replayFinishedEvent } from '../compat/replay-finished.ts';
import type { ReplayReportDoc } from '../core/documents.ts';
import { insertOneAbsent } from '../core/insert-absent.ts';
import type { EventStore } from '../core/events.ts';
import type { ReplayStore } from '../core/replay-store.ts';

async function closedAs(temporal: Client, report: ReplayReportDoc): Promise<Pick<ReplayReportDoc, 'status' | 'error'> | undefined> {
  let status: string;
  try {
    status = (await temporal.workflow.getHandle(report.workflowId, report.replayId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { status: 'FAILED', error: `its workflow ${report.workflowId} is no longer in Temporal` };
    throw err;
  }
  if (status === 'RUNNING') return undefined;
  if (status === 'TERMINATED') return { status: 'CANCELLED', error: `terminated: the replay workflow ${report.workflowId} was terminated` };
  return { status: 'FAILED', error: `the replay workflow ${report.workflowId} ended ${status.toLowerCase().replaceAll('_', ' ')} without writing its report` };
}

/** The reports as read, those still RUNNING with a closed workflow settled (and stored so). */
export async function settleClosedReplays<T extends ReplayReportDoc>(deps: { replays: ReplayStore; temporal: Client; events: EventStore }, list: T[]): Promise<T[]> {
  const { replays, temporal, events } = deps;
  const { reports } = replays;
  return Promise.all(
    list.map(async (report) => {
      if (report.status !== 'RUNNING') return report;
      const end = await closedAs(temporal, report);
      if (!end) return report;
      const finishedAt = new Date();
      const update = { ...end, finishedAt, durationMs: finishedAt.getTime() - new Date(report.startedAt).getTime() };
      // Only a report still RUNNING: a replay that wrote its own end just before closing keeps it.
      const { modifiedCount } = await reports.updateOne({ replayId: report.replayId, status: 'RUNNING' }, { $set: update });
      if (modifiedCount) {
        const settled = { ...report, ...update };
        // Two readers at once may both have modified it (FerretDB): one of them tells the end.
        if (await insertOneAbsent(replays.settled, { _id: report.replayId, at: new Date() })) await events.append(replayFinishedEvent(settled));
        return settled;
      }
      const written = await reports.findOne({ replayId: report.replayId }, { projection: { _id: 0, samples: 0, noisyPaths: 0, perTool: 0 } });
      return { ...report, ...written };
    }),
  );
}
