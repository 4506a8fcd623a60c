import type { EventDoc } from '../core/documents.ts';

const WIDTH = 20;

/** A text progress bar: `[########............]  40%`. */
export function bar(fraction: number, width = WIDTH): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(f * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(f * 100)).padStart(3)}%`;
}

export function clock(date: string | Date): string {
  return new Date(date).toISOString().slice(11, 19);
}

const VALIDATION_STEPS = ['install', 'lint', 'test', 'build'];

/**
 * One human line for an event of a rollout or a validation: weights as a bar, validation steps
 * with their place among the steps, analyses with their verdict and reasons.
 */
export function progressLine(e: EventDoc): string {
  const d = (e.details ?? {}) as Record<string, any>;
  const head = `${clock(e.time)}  ${e.service}${e.version ? `@${e.version}` : ''}  ${e.kind}`;
  const step = /^([A-Z]+)_(STARTED|COMPLETE|FAILED)$/.exec(e.kind);
  if (step && VALIDATION_STEPS.includes(step[1]!.toLowerCase())) {
    const i = VALIDATION_STEPS.indexOf(step[1]!.toLowerCase());
    const done = step[2] === 'STARTED' ? i : i + 1;
    const took = e.durationMs !== undefined ? ` in ${(e.durationMs / 1000).toFixed(1)} s` : '';
    return `${head}  validation ${bar(done / VALIDATION_STEPS.length)}${took}${d.reason ? `  ${String(d.reason).split('\n')[0]}` : ''}`;
  }
  switch (e.kind) {
    case 'CANARY_STEP':
      return `${head}  step ${d.step}/${d.of}  ${bar((d.weight ?? 0) / 100)}  hold ${d.holdSec} s`;
    case 'WEIGHTS_SET': {
      const w = (d.weights ?? []) as { version: string; weight: number }[];
      return `${head}  ${w.map((x) => `${x.version}=${x.weight}%`).join(' ')}`;
    }
    case 'ANALYSIS':
      return `${head}  ${d.healthy ? 'healthy' : d.inconclusive ? 'inconclusive' : 'UNHEALTHY'}  ${d.requests ?? 0} requests${d.successRate != null ? `, success ${(d.successRate * 100).toFixed(1)}%` : ''}${d.p99Ms != null ? `, p99 ${Math.round(d.p99Ms)} ms` : ''}${d.reasons?.length ? `  ${d.reasons.join('; ')}` : ''}`;
    case 'REPLAY_GATE':
      return `${head}  ${d.decision ? `gate ${String(d.decision).toUpperCase()}` : 'replaying captured traffic'}${d.reasons?.length ? `  ${d.reasons.join('; ')}` : ''}`;
    default: {
      const reason = d.reason ?? (Array.isArray(d.reasons) ? d.reasons.join('; ') : undefined);
      const stage = d.stage ? `  stage ${d.stage}${typeof d.weight === 'number' ? ` ${bar(d.weight / 100)}` : ''}` : '';
      return `${head}${stage}${reason ? `  ${String(reason).split('\n')[0]}` : ''}`;
    }
  }
}
