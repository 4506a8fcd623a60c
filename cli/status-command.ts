/**
 * `mcpship status`: services, their versions, the deployment in progress (stage, weight as a bar,
 * last analysis), the last validation and firing alerts. --watch redraws it live: the event stream
 * (SSE) says when something changed and what validation step runs now.
 */
import type { AlertDoc } from '../alerts/types.ts';
import type { AlertsAnswer } from '../api/routes/alerts.ts';
import type { DeploymentAnswer } from '../api/routes/deployments.ts';
import type { ServiceList, ServiceRow } from '../api/routes/services.ts';
import type { EventDoc } from '../core/documents.ts';
import { ApiError, type ApiClient } from './api-client.ts';
import { bar, clock } from './progress.ts';

export interface StatusRow {
  service: ServiceRow;
  deployment: DeploymentAnswer | null;
  /** The validation step running now, as seen in the event stream (--watch only). */
  validating: { step: string; since: string } | null;
  firingAlerts: Pick<AlertDoc, 'alertId' | 'summary'>[];
}

export interface StatusOptions {
  watch?: boolean;
  json?: boolean;
  /** Seconds between redraws while nothing happens (--watch). */
  interval?: string;
}

async function snapshot(api: ApiClient, validating: ReadonlyMap<string, StatusRow['validating']>): Promise<StatusRow[]> {
  const [{ services }, { alerts }] = await Promise.all([api.get<ServiceList>('/api/services'), api.get<AlertsAnswer>('/api/alerts?state=firing')]);
  return Promise.all(
    services
      .filter((s) => s.state === 'PRESENT')
      .map(async (service) => {
        const deployment = await api.get<DeploymentAnswer>(`/api/services/${encodeURIComponent(service.name)}/deployment`).catch((err: unknown) => {
          // 404: never deployed; 503-ish while Temporal is away: shown as unknown rather than failing the view.
          if (err instanceof ApiError) return null;
          throw err;
        });
        return {
          service,
          deployment,
          validating: validating.get(service.name) ?? null,
          firingAlerts: alerts.filter((a) => a.service === service.name).map((a) => ({ alertId: a.alertId, summary: a.summary })),
        };
      }),
  );
}

function deploymentText(d: DeploymentAnswer | null): string {
  if (!d) return 'no deployment';
  if (!d.running) return `last: ${d.version} ${d.stage}${d.reason ? ` (${d.reason.split('\n')[0]})` : ''}`;
  const steps = d.steps.length ? ` step ${Math.min(d.stepIndex + 1, d.steps.length)}/${d.steps.length}` : '';
  const analysis = d.lastAnalysis ? `  last analysis: ${d.lastAnalysis.healthy ? 'healthy' : d.lastAnalysis.inconclusive ? 'inconclusive' : 'UNHEALTHY'} (${d.lastAnalysis.requests} requests)` : '';
  return `deploying ${d.version}: ${d.stage}${d.paused ? ' PAUSED' : ''}${steps} ${bar(d.weight / 100)}${analysis}`;
}

export function renderStatus(rows: readonly StatusRow[]): string[] {
  if (rows.length === 0) return ['no services yet: add a folder with an mcp.json under the services root'];
  const lines: string[] = [];
  for (const { service: s, deployment, validating, firingAlerts } of rows) {
    const v = s.lastValidation;
    const last = v ? `${v.ok ? 'passed' : 'FAILED'} ${new Date(v.at).toISOString().replace('T', ' ').slice(0, 19)}${v.version ? ` -> ${v.version}` : ''}${v.reason ? `: ${v.reason.split('\n')[0]}` : ''}` : 'not validated yet';
    lines.push(`${s.name.padEnd(24)} active=${s.activeVersion ?? '-'} canary=${s.canaryVersion ?? '-'}  last validation: ${last}`);
    lines.push(`${''.padEnd(24)} ${deploymentText(deployment)}`);
    if (validating) lines.push(`${''.padEnd(24)} validating: ${validating.step} since ${clock(validating.since)}`);
    for (const a of firingAlerts) lines.push(`${''.padEnd(24)} ALERT ${a.summary}`);
    if (s.temporalUi) lines.push(`${''.padEnd(24)} ${s.temporalUi}`);
  }
  return lines;
}

const STEP = /^(INSTALL|LINT|TEST|BUILD)_(STARTED|COMPLETE|FAILED)$/;
const VALIDATION_DONE = ['STAGED', 'ALREADY_STAGED', 'VALIDATION_FAILED', 'VALIDATION_CANCELLED'];

/** The validation step each service runs now, kept up to date from events. */
function trackValidation(validating: Map<string, StatusRow['validating']>, e: EventDoc): void {
  const step = STEP.exec(e.kind);
  if (step?.[2] === 'STARTED') validating.set(e.service, { step: step[1]!.toLowerCase(), since: new Date(e.time).toISOString() });
  else if (e.kind === 'VALIDATING') validating.set(e.service, { step: 'starting', since: new Date(e.time).toISOString() });
  else if (e.kind === 'VALIDATION_WAITING') validating.set(e.service, { step: 'waiting for disk space', since: new Date(e.time).toISOString() });
  else if (VALIDATION_DONE.includes(e.kind)) validating.delete(e.service);
}

export async function statusCommand(api: ApiClient, opts: StatusOptions = {}): Promise<void> {
  const validating = new Map<string, StatusRow['validating']>();
  const print = (rows: StatusRow[]) => {
    if (opts.json) return console.log(JSON.stringify({ at: new Date().toISOString(), services: rows }));
    if (opts.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
    const lines = renderStatus(rows);
    if (opts.watch) lines.unshift(`mcpship status  ${new Date().toISOString().slice(0, 19).replace('T', ' ')}  (Ctrl-C to stop)`);
    console.log(lines.join('\n') + (opts.watch && !process.stdout.isTTY ? '\n' : ''));
  };
  if (!opts.watch) return print(await snapshot(api, validating));

  const everyMs = Math.max(0.5, Number(opts.interval ?? 2)) * 1000;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  let dirty = true;
  let drawing = false;
  const redraw = async () => {
    if (drawing || !dirty) return;
    drawing = true;
    dirty = false;
    try {
      print(await snapshot(api, validating));
    } catch (err) {
      if (!opts.json) console.error(`mcpship: ${(err as Error).message}`);
    } finally {
      drawing = false;
    }
  };
  const timer = setInterval(() => {
    dirty = true;
    void redraw();
  }, everyMs);
  // Events wake a redraw at once; a lost stream is opened again, while the timer keeps drawing.
  while (!abort.signal.aborted) {
    await api
      .stream('/api/events/stream', (data) => {
        trackValidation(validating, JSON.parse(data) as EventDoc);
        dirty = true;
        void redraw();
      }, abort.signal, redraw)
      .catch(() => undefined);
    if (!abort.signal.aborted) await new Promise((r) => setTimeout(r, 1_000));
  }
  clearInterval(timer);
}
