import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplayStarted } from '../api/routes/replays.ts';
import type { ReplayReportDoc } from '../core/documents.ts';
import type { ApiClient } from './api-client.ts';

export interface ReplayOptions {
  baseline?: string;
  since?: string;
  until?: string;
  tools?: string;
  clients?: string;
  sample?: string;
  json?: boolean;
}

const POLL_MS = 1_000;
const list = (csv: string | undefined) => csv?.split(',').map((s) => s.trim()).filter(Boolean);

function summary(r: ReplayReportDoc): string[] {
  const c = r.counts;
  const lines = [
    `replay ${r.replayId} of ${r.service}@${r.candidate} against ${r.baseline || '(nothing active)'}: ${r.status}${r.durationMs !== undefined ? ` in ${(r.durationMs / 1000).toFixed(1)} s` : ''}`,
    `  replayed ${c.replayed}: equal ${c.equal}, noise ${c.noise}, differs ${c.differs}, breaks ${c.breaks}, skipped ${c.skipped}`,
  ];
  for (const [tool, why] of Object.entries(r.skippedTools ?? {})) lines.push(`  skipped ${tool}: ${why}`);
  for (const p of r.topPaths ?? []) lines.push(`  ${String(p.count).padStart(5)}  ${p.kind.padEnd(14)} ${p.path}`);
  if (r.schema) {
    const sc = r.schema;
    lines.push(`  schema ${sc.from} -> ${sc.to}: ${sc.class === 'none' ? 'no changes' : sc.class}; ${sc.rejectedCalls} of ${sc.capturedCalls} captured calls rejected`);
    for (const c of sc.changes) lines.push(`    ${c.class.padEnd(8)} ${c.tool}: ${c.detail} (${c.usage.rejected}/${c.usage.calls} calls rejected)`);
  }
  if (r.gate) lines.push(`  gate: ${r.gate.decision.toUpperCase()}: ${r.gate.reasons.join('; ')}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines;
}

/**
 * Starts a replay of a service's captured traffic against a version and follows it: a progress
 * line whenever it moves, then the report. Exits 1 when the gate's verdict would block the version
 * or the replay did not finish.
 */
export async function replayCommand(api: ApiClient, service: string, version: string, opts: ReplayOptions): Promise<void> {
  const body = {
    version,
    trigger: 'cli',
    ...(opts.baseline ? { baseline: opts.baseline } : {}),
    ...(opts.since ? { since: opts.since } : {}),
    ...(opts.until ? { until: opts.until } : {}),
    ...(list(opts.tools) ? { tools: list(opts.tools) } : {}),
    ...(list(opts.clients) ? { clients: list(opts.clients) } : {}),
    ...(opts.sample ? { sampleSize: Number(opts.sample) } : {}),
  };
  const started = await api.request<ReplayStarted>('POST', `/api/services/${encodeURIComponent(service)}/replays`, body);
  if (!opts.json) console.log(`replay ${started.replayId} started (${started.workflowId})`);
  const path = `/api/services/${encodeURIComponent(service)}/replays/${encodeURIComponent(started.replayId)}`;
  let shown = '';
  for (;;) {
    // The report appears once the workflow's first activity has picked the traffic.
    const report = await api.get<ReplayReportDoc>(path).catch(() => undefined);
    if (report && report.status !== 'RUNNING') {
      if (opts.json) console.log(JSON.stringify(report, null, 2));
      else for (const line of summary(report)) console.log(line);
      if (report.status !== 'DONE' || report.gate?.decision === 'blocked') process.exitCode = 1;
      return;
    }
    const line = report ? `replayed ${report.done}/${report.total}${report.total ? ` (${Math.floor((report.done / report.total) * 100)}%)` : ''}` : 'picking captured traffic';
    if (!opts.json && line !== shown) console.log(line);
    shown = line;
    await sleep(POLL_MS);
  }
}
