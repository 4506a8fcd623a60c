/**
 * The event that says a replay ended (REPLAY_FINISHED), built from its report as stored: the replay
 * appends it when it writes its own end (activities/replay.ts), the API when it settles a report
 * whose workflow closed without writing one (api/replay-settle.ts). The event stream, the
 * dashboard, `mcpship status` and the platform metrics read it the same way either way.
 */
import type { ReplayReportDoc } from '../core/documents.ts';
import type { NewEvent } from '../core/events.ts';

export function replayFinishedEvent(report: Pick<ReplayReportDoc, 'replayId' | 'workflowId' | 'service' | 'candidate' | 'status' | 'counts' | 'schema' | 'gate' | 'error'>): NewEvent {
  const { status, gate, error } = report;
  return {
    service: report.service,
    version: report.candidate,
    kind: 'REPLAY_FINISHED',
    status: status !== 'DONE' || gate?.decision === 'blocked' ? 'failed' : 'ok',
    workflowId: report.workflowId,
    details: { replayId: report.replayId, status, counts: report.counts, schemaClass: report.schema?.class ?? null, decision: gate?.decision ?? null, reasons: gate?.reasons ?? [], ...(error ? { error } : {}) },
  };
}
