import type { EventPage } from '../api/routes/events.ts';
import type { VersionList } from '../api/routes/services.ts';
import type { EventDoc } from '../core/documents.ts';
import { temporalUiLink } from '../core/workflow-ids.ts';
import type { ApiClient } from './api-client.ts';

function when(date: string | Date | undefined): string {
  return date ? new Date(date).toISOString().replace('T', ' ').slice(0, 19) : '-';
}

export async function versionsCommand(api: ApiClient, service: string, opts: { json?: boolean } = {}): Promise<void> {
  const { versions } = await api.get<VersionList>(`/api/services/${encodeURIComponent(service)}/versions`);
  if (opts.json) return console.log(JSON.stringify({ service, versions }));
  if (versions.length === 0) console.log(`${service} has no staged versions yet`);
  for (const v of versions) {
    const steps = v.steps.map((s) => `${s.step} ${(s.durationMs / 1000).toFixed(1)}s`).join(', ');
    console.log(`${v.version.padEnd(10)} ${v.state.padEnd(12)} ${when(v.createdAt)}  ${v.hash.slice(0, 12)}  ${steps}`);
  }
}

function formatEvent(e: EventDoc): string {
  const details = (e.details ?? {}) as Record<string, unknown>;
  const reason = typeof details.reason === 'string' ? `  ${details.reason.split('\n')[0]}` : '';
  const duration = e.durationMs !== undefined ? ` (${(e.durationMs / 1000).toFixed(2)}s)` : '';
  return `${when(e.time)}  ${e.service}${e.version ? `@${e.version}` : ''}  ${e.kind}${duration}${reason}`;
}

/** Prints a service's events; with follow, keeps printing them as they happen until Ctrl-C. */
export async function logsCommand(api: ApiClient, service: string, opts: { follow?: boolean; limit?: number; json?: boolean }): Promise<void> {
  const health = await api.get<{ temporalUi: string | null }>('/api/health');
  const { namespace } = await api.get<{ namespace: string }>('/api/meta');
  const seenRuns = new Set<string>();
  const print = (e: EventDoc) => {
    // One event per line, as the API gives it.
    if (opts.json) return console.log(JSON.stringify(e));
    if (e.workflowId && e.runId && !seenRuns.has(e.runId)) {
      seenRuns.add(e.runId);
      const link = temporalUiLink(health.temporalUi ?? undefined, namespace, e.workflowId);
      console.log(`-- run ${e.workflowId} ${e.runId}${link ? `  ${link}/${e.runId}` : ''}`);
    }
    console.log(formatEvent(e));
  };
  const q = `service=${encodeURIComponent(service)}`;
  const { events } = await api.get<EventPage>(`/api/events?${q}&limit=${opts.limit ?? 500}`);
  events.forEach(print);
  if (!opts.follow) return;
  const after = events[events.length - 1]?.seq ?? 0;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  await api.stream(`/api/events/stream?${q}&after=${after}`, (data) => print(JSON.parse(data) as EventDoc), abort.signal).catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
}
