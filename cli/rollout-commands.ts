/**
 * deploy, promote, rollback, pause, resume, abort: each sends its control to the API, then follows
 * the deployment in the event stream (SSE), a progress line per step, until the rollout ends or
 * waits for a person. --json prints the answer and every event as one JSON object per line.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlAnswer, DeployStarted, RollbackStarted } from '../api/routes/deployments.ts';
import type { DeploymentState } from '../core/deployment.ts';
import type { EventDoc } from '../core/documents.ts';
import type { ApiClient } from './api-client.ts';
import { progressLine } from './progress.ts';

/** Events that end a deployment, and whether each is what the command asked for. */
export const END_KINDS = ['PROMOTED', 'ROLLBACK_COMPLETE', 'DEPLOYMENT_ABORTED', 'DEPLOYMENT_FAILED'] as const;
/** Events after which a deployment waits for a person: following stops there. */
export const WAIT_KINDS = ['PAUSED', 'REPLAY_BLOCKED'] as const;

export type RolloutCommand = 'deploy' | 'promote' | 'rollback' | 'pause' | 'resume' | 'abort';

export interface RolloutOptions {
  json?: boolean;
  /** false: send the control and print the answer only. */
  follow?: boolean;
  reason?: string;
}

const RECONNECT_MS = 1_000;

/** What the command hopes to see at the end: anything else exits 1. */
const WANTED: Record<RolloutCommand, readonly string[]> = {
  deploy: ['PROMOTED'],
  promote: ['PROMOTED'],
  resume: ['PROMOTED'],
  rollback: ['PROMOTED'],
  abort: ['DEPLOYMENT_ABORTED'],
  pause: [],
};

async function send(api: ApiClient, command: RolloutCommand, service: string, version: string | undefined, opts: RolloutOptions): Promise<{ version?: string; answer: unknown }> {
  const base = `/api/services/${encodeURIComponent(service)}`;
  switch (command) {
    case 'deploy': {
      const answer = await api.request<DeployStarted>('POST', `${base}/deploy`, { version });
      return { version, answer };
    }
    case 'rollback': {
      const answer = await api.request<RollbackStarted>('POST', `${base}/rollback`, version ? { version } : {});
      return { version: answer.version, answer };
    }
    default: {
      const answer = await api.request<ControlAnswer>('POST', `${base}/${command}`, command === 'abort' && opts.reason ? { reason: opts.reason } : {});
      return { version: answer.version, answer };
    }
  }
}

/**
 * Sends the control once the event stream is open (so no event of it is missed), then prints the
 * deployment's events until it ends; a dropped stream is resumed from the last event seen.
 */
export async function rolloutCommand(api: ApiClient, command: RolloutCommand, service: string, version: string | undefined, opts: RolloutOptions): Promise<void> {
  const out = (line: string, obj: unknown) => console.log(opts.json ? JSON.stringify(obj) : line);
  if (opts.follow === false || command === 'pause') {
    const sent = await send(api, command, service, version, opts);
    out(describe(command, service, sent.version, sent.answer), { command, service, answer: sent.answer });
    return;
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  let target: string | undefined;
  let sent = false;
  let lastSeq: number | undefined;
  let end: EventDoc | undefined;
  const q = `service=${encodeURIComponent(service)}`;
  while (!end && !abort.signal.aborted) {
    const path = `/api/events/stream?${q}${lastSeq !== undefined ? `&after=${lastSeq}` : ''}`;
    const onOpen = sent
      ? undefined
      : async () => {
          const answer = await send(api, command, service, version, opts);
          sent = true;
          target = answer.version;
          out(describe(command, service, answer.version, answer.answer), { command, service, answer: answer.answer });
        };
    try {
      await api.stream(
        path,
        (data, id) => {
          if (id) lastSeq = Number(id);
          const e = JSON.parse(data) as EventDoc;
          // Another version's deployment of the same service is not this one's story.
          if (target && e.version && e.version !== target) return;
          out(progressLine(e), e);
          if ((END_KINDS as readonly string[]).includes(e.kind) || (WAIT_KINDS as readonly string[]).includes(e.kind)) {
            end = e;
            abort.abort();
          }
        },
        abort.signal,
        onOpen,
      );
    } catch (err) {
      if (abort.signal.aborted) break;
      // Refused (409, 404...) or never reached: there is nothing to follow.
      if (!sent) throw err;
      if (!opts.json) console.error(`event stream lost (${(err as Error).message}); reconnecting`);
    }
    if (!end && !abort.signal.aborted) await sleep(RECONNECT_MS);
  }
  if (!end) return;
  const waiting = (WAIT_KINDS as readonly string[]).includes(end.kind);
  if (!opts.json) console.log(waiting ? `${service}: waiting for a person (${end.kind}); continue with \`mcpship resume|promote|override|abort ${service}\`` : `${service}: ${end.kind === 'PROMOTED' ? `${end.version} is active` : end.kind}`);
  if (!waiting && !WANTED[command].includes(end.kind)) process.exitCode = 1;
}

function describe(command: RolloutCommand, service: string, version: string | undefined, answer: unknown): string {
  const a = answer as Partial<DeploymentState> & { workflowId?: string; version?: string };
  const v = a.version ?? version;
  if (a.stage) return `${service}@${a.version}: ${command} accepted, stage ${a.stage}${typeof a.weight === 'number' ? ` at ${a.weight}%` : ''}${a.paused ? ' (paused)' : ''}`;
  return `${service}${v ? `@${v}` : ''}: ${command} started (${a.workflowId})`;
}
